#!/usr/bin/env bash
# Fails if a CloudFormation template grants a bare "*" (an IAM action or resource of "*", quoted or
# not) anywhere but the one documented exception: the orchestrator's CloudWatch metric reads, which
# AWS does not scope to resources. Scoped patterns such as "<bucket ARN>/*" are not bare wildcards.
# Also fails on the two mistakes a deploy rehearsal found (docs/deploy.md, "Rehearsal"):
# - events:ListRules anywhere: IAM grants it only on "*", and the scheduler reads its one rule;
# - a function without an AWS::Lambda::EventInvokeConfig of MaximumRetryAttempts 0 and a
#   MaximumEventAgeInSeconds: Lambda's two default retries would come on top of sosw's own.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ALLOWED="cloudformation/sosw-essentials.yaml:CloudWatchMetricReadsHaveNoResourceScope"

cd "$REPO_ROOT"
# Every line whose value is a lone * ("*", '*', * or a list item of one).
hits="$(grep -nE "(:|-)[[:space:]]*[\"']?\*[\"']?[[:space:]]*(#.*)?$|\[[[:space:]]*[\"']\*[\"'][[:space:]]*\]" cloudformation/*.yaml || true)"
bad=""
while IFS= read -r hit; do
    [[ -n "$hit" ]] || continue
    file="${hit%%:*}"; rest="${hit#*:}"; line="${rest%%:*}"
    # The statement's Sid: the nearest `Sid:` above the hit.
    sid="$(head -n "$line" "$file" | grep -E '^[[:space:]]*- Sid:' | tail -1 | sed -E 's/.*Sid:[[:space:]]*//')"
    action="$(head -n "$line" "$file" | tail -n 3 | grep -E 'Action:' | sed -E 's/.*Action:[[:space:]]*//')"
    if [[ "$file:$sid" == "$ALLOWED" && "$action" == "cloudwatch:GetMetricStatistics" ]]; then
        echo "allowed (documented exception): $file:$line $sid ($action)"
    else
        bad+="$hit"$'\n'
    fi
done <<<"$hits"
if [[ -n "$bad" ]]; then
    printf 'wildcard "*" outside the documented CloudWatch exception:\n%s' "$bad" >&2
    exit 1
fi
echo "templates: no \"*\" besides the documented CloudWatch exception"

if listrules="$(grep -nE '^[^#]*events:ListRules' cloudformation/*.yaml)"; then
    printf 'events:ListRules is granted only on "*"; read the one rule (DescribeRule) instead:\n%s\n' \
        "$listrules" >&2
    exit 1
fi

# Every function has an EventInvokeConfig naming it, with no Lambda retry and a maximum event age.
missing=""
for file in cloudformation/*.yaml; do
    while IFS= read -r fn; do
        [[ -n "$fn" ]] || continue
        config="$(awk -v fn="$fn" '
            /^  [A-Za-z0-9]+:$/ { if (inside && found) exit; inside = 0; found = 0; block = "" }
            /Type: AWS::Lambda::EventInvokeConfig/ { inside = 1 }
            { block = block $0 "\n" }
            inside && $0 ~ "FunctionName: !Ref " fn "$" { found = 1 }
            END { if (inside && found) printf "%s", block }' "$file")"
        if [[ -z "$config" ]] || ! grep -q 'MaximumRetryAttempts: 0$' <<<"$config" ||
            ! grep -q 'MaximumEventAgeInSeconds:' <<<"$config"; then
            missing+="$file: $fn"$'\n'
        fi
    done < <(awk '/^  [A-Za-z0-9]+:$/ { name = $1; sub(":", "", name) }
                  /Type: AWS::Lambda::Function$/ { print name }' "$file")
done
if [[ -n "$missing" ]]; then
    printf 'functions without an EventInvokeConfig (MaximumRetryAttempts: 0, MaximumEventAgeInSeconds):\n%s' \
        "$missing" >&2
    exit 1
fi
echo "templates: no events:ListRules; every function has MaximumRetryAttempts 0 and a maximum event age"
