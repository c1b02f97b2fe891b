#!/usr/bin/env bash
# Fails if a CloudFormation template grants a bare "*" (an IAM action or resource of "*", quoted or
# not) anywhere but the one documented exception: the orchestrator's CloudWatch metric reads, which
# AWS does not scope to resources. Scoped patterns such as "<bucket ARN>/*" are not bare wildcards.
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
