"""Lints every IAM inline policy of the CloudFormation templates with parliament, which knows which
resource types each action accepts (events:ListRules, for one, only "*").

The templates' intrinsics are resolved with sample values (account 123456789012, us-east-1, each
parameter's default or a sample) so that parliament sees real ARNs. Any finding fails, except those
listed in ACCEPTED with their reason. Run by scripts/check-iam.sh (parliament's venv).
"""

import json
import re
import sys
from pathlib import Path

import yaml
from parliament import analyze_policy_string

ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"

# (template, role, issue) -> why the finding is accepted.
ACCEPTED = {}

SAMPLES = {
    "CodeBucket": "sosw-code",
    "SpoolBucketName": "sosw-spool",
    # The example worker's, used with ReportsToStore=true (its default, empty, grants nothing).
    "AlertsTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:sosw-alerts",
    "LabourerFunctionArns": [
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sosw_tutorial_pull_tweeter_hashtags",
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sosw_tutorial_flaky_hashtags",
    ],
}


class Tagged:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tagged(suffix, value)


def is_no_value(value):
    return isinstance(value, Tagged) and value.tag == "Ref" and value.value == "AWS::NoValue"


class Loader(yaml.SafeLoader):
    pass


Loader.add_multi_constructor("!", _tag)


class Template:
    def __init__(self, path):
        self.path = path
        self.doc = yaml.load(path.read_text(), Loader=Loader)
        self.params = self.doc.get("Parameters", {})
        self.resources = self.doc.get("Resources", {})

    def name_of(self, logical):
        """The physical name a resource gets (its name property, else the logical id)."""
        props = self.resources[logical].get("Properties", {})
        for key in ("LogGroupName", "Name", "TopicName", "FunctionName", "BucketName"):
            if key in props:
                return self.resolve(props[key])
        return logical.lower()

    def arn_of(self, logical):
        kind = self.resources[logical]["Type"]
        name = self.name_of(logical)
        return {
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        }[kind]

    def ref(self, name):
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            if name in SAMPLES:
                return SAMPLES[name]
            return str(self.params[name].get("Default", f"sample-{name.lower()}"))
        kind = self.resources[name]["Type"]
        # Ref of a topic is its ARN; of a rule, function or bucket, its name.
        return self.arn_of(name) if kind == "AWS::SNS::Topic" else self.name_of(name)

    def resolve(self, value):
        if isinstance(value, Tagged):
            if value.tag == "Ref":
                return self.ref(value.value)
            if value.tag == "GetAtt":
                logical, attr = value.value.split(".", 1)
                assert attr == "Arn", f"{self.path}: GetAtt {value.value}"
                return self.arn_of(logical)
            if value.tag == "Sub":

                def sub(match):
                    key = match.group(1)
                    if key.endswith(".Arn"):
                        return self.arn_of(key[:-4])
                    return self.ref(key)

                return re.sub(r"\$\{([^}]+)\}", sub, value.value)
            if value.tag == "If":
                # Both branches are linted (a statement of either layout), AWS::NoValue dropped.
                _, *branches = value.value
                kept = [b for b in branches if not is_no_value(b)]
                return [self.resolve(b) for b in kept]
            raise ValueError(f"{self.path}: intrinsic !{value.tag} is not resolved here")
        if isinstance(value, list):
            out = []
            for item in value:
                item = self.resolve(item)
                out.extend(item if isinstance(item, list) else [item])
            return out
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def policies(self):
        for logical, res in self.resources.items():
            if res["Type"] != "AWS::IAM::Role":
                continue
            for policy in res.get("Properties", {}).get("Policies", []):
                yield logical, self.resolve(policy["PolicyDocument"])


def main(paths):
    failed = 0
    for path in paths:
        template = Template(Path(path))
        for role, document in template.policies():
            findings = analyze_policy_string(json.dumps(document)).findings
            for finding in findings:
                key = (Path(path).name, role, finding.issue)
                if key in ACCEPTED:
                    print(f"accepted: {path} {role} {finding.issue}: {ACCEPTED[key]}")
                    continue
                failed += 1
                print(f"{path}: role {role}: {finding.issue} {finding.detail}", file=sys.stderr)
            print(f"parliament: {path} {role}: {len(document['Statement'])} statements")
    if failed:
        print(f"parliament: {failed} finding(s)", file=sys.stderr)
        return 1
    print("parliament: every inline policy clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
