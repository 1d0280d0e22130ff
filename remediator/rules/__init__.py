"""Rules: which alerts to act on and what to do, written by SREs in YAML.

Load with `load_rule_set` (or `check_rule_files` for `remediator check`), then call
`RuleSet.match(labels, status)` on the hot path. Matchers use Alertmanager's syntax and
semantics; templates render in a Jinja2 sandbox.
"""

from remediator.rules.compiled import (
    CompiledAction,
    CompiledRule,
    CompiledVerify,
    RuleSet,
    compile_rule,
)
from remediator.rules.loader import check_rule_files, load_rule_set
from remediator.rules.matcher import Matcher, MatcherSyntaxError, parse_matcher
from remediator.rules.model import (
    ACTION_MODELS,
    EscalateSpec,
    IncidentSpec,
    LogAction,
    Rule,
    RuleFile,
    TemplateStr,
    VerifySpec,
    rule_file_json_schema,
)
from remediator.rules.templating import (
    Template,
    TemplateError,
    compile_template,
    render_context,
    render_params,
)

__all__ = [
    "ACTION_MODELS",
    "CompiledAction",
    "CompiledRule",
    "CompiledVerify",
    "EscalateSpec",
    "IncidentSpec",
    "LogAction",
    "Matcher",
    "MatcherSyntaxError",
    "Rule",
    "RuleFile",
    "RuleSet",
    "Template",
    "TemplateError",
    "TemplateStr",
    "VerifySpec",
    "check_rule_files",
    "compile_rule",
    "compile_template",
    "load_rule_set",
    "parse_matcher",
    "render_context",
    "render_params",
    "rule_file_json_schema",
]
