//! DynamoDB adapters with sosw 0.7's table schema. (Being written.)
