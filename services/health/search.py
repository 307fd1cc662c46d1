"""FHIR search parameters to storage queries.

A search URL becomes a `SearchPlan`: storage predicates on the index keys that
`services.health.searchparams` extracts at write time, the sort, the page, and the result
parameters (`_include`, `_revinclude`, `_summary`, `_elements`, `_total`). Chained
parameters (`subject:Patient.name=...`) are returned as `Chain`s that the service resolves
with a search of their own, under the same access rules, before running the main query.

Values separated by commas are alternatives (OR); a parameter given twice must hold both
times (AND). Unknown parameters are ignored and left out of the self link, or refused with
400 under `Prefer: handling=strict`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from services.health.searchparams import SEARCH_PARAMS, ParamType, SearchParam
from shared.errors import BadRequest
from shared.storage import AllOf, Bounds, In, Predicate, Prefix, Range, Sort, Span
from shared.storage.keys import date_span, fold, terms
from shared.storage.query import AnyOf, Not

RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_elements",
        "_total",
        "_format",
        "_pretty",
        "_page",
    }
)
_DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_NUMBER_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "ap")
_MODIFIERS = {
    ParamType.STRING: {"", "exact", "contains"},
    ParamType.TOKEN: {"", "not", "text"},
    ParamType.DATE: {""},
    ParamType.REFERENCE: {""},  # plus a resource type, e.g. subject:Patient
    ParamType.QUANTITY: {""},
    ParamType.NUMBER: {""},
    ParamType.URI: {"", "below"},
}
_LOW = datetime(1, 1, 1, tzinfo=UTC)
_HIGH = datetime(9999, 12, 31, tzinfo=UTC)
MAX_CHAIN_MATCHES = 1000


@dataclass(frozen=True, slots=True)
class Chain:
    """`param:target.inner=value`: resources whose `param` points at a `target` matching
    `inner=value` (one level, as the issue and most servers support)."""

    param: SearchParam
    target: str
    inner_name: str
    value: str


@dataclass(frozen=True, slots=True)
class Include:
    """`_include=Source:param[:Target]` or `_revinclude=Source:param[:Target]`."""

    source: str
    param: SearchParam
    target: str | None


@dataclass
class SearchPlan:
    """A parsed search: what to ask the store, and how to present the result."""

    resource_type: str
    where: list[Predicate] = field(default_factory=list)
    chains: list[Chain] = field(default_factory=list)
    # :contains criteria (any of the values), re-checked on the bodies of a page
    contains: list[tuple[SearchParam, list[str]]] = field(default_factory=list)
    sort: list[Sort] = field(default_factory=list)
    count: int = 20
    page: str | None = None
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    summary: str | None = None  # true | count | data | text | false
    elements: list[str] = field(default_factory=list)
    total: str | None = None  # none | estimate | accurate
    used: list[tuple[str, str]] = field(default_factory=list)  # for the self link
    ignored: list[str] = field(default_factory=list)


def _split(value: str) -> list[str]:
    """Comma-separated alternatives; `\\,` is a literal comma."""
    parts = re.split(r"(?<!\\),", value)
    return [p.replace("\\,", ",").replace("\\|", "|").replace("\\$", "$") for p in parts]


def _token_parts(value: str) -> str:
    # `system|code`, `|code`, `system|` and `code` are stored as they are written.
    return value.replace("\\|", "|")


class SearchParser:
    """Parses the query of one resource type's search."""

    def __init__(self, resource_type: str, *, default_count: int, max_count: int) -> None:
        self.resource_type = resource_type
        self.params = SEARCH_PARAMS[resource_type]
        self.default_count = default_count
        self.max_count = max_count

    def parse(self, items: Sequence[tuple[str, str]], *, strict: bool = False) -> SearchPlan:
        """Parse (name, value) pairs in request order."""
        plan = SearchPlan(self.resource_type, count=self.default_count)
        for name, value in items:
            if name in RESULT_PARAMS:
                self._result(plan, name, value)
                continue
            base, _, modifier = name.partition(":")
            if "." in name:
                self._chain(plan, name, value, strict)
                continue
            param = self.params.get(base)
            if param is None:
                if strict:
                    raise BadRequest(
                        f"Unknown search parameter {name!r} for {self.resource_type}.",
                        issue_code="not-supported",
                    )
                plan.ignored.append(name)
                continue
            if value == "":
                continue  # an empty value constrains nothing (FHIR: ignore)
            plan.where.extend(self._predicates(plan, param, modifier, value))
            plan.used.append((name, value))
        return plan

    # --- result parameters -----------------------------------------------------------------

    def _result(self, plan: SearchPlan, name: str, value: str) -> None:
        if name == "_count":
            try:
                count = int(value)
            except ValueError:
                raise BadRequest(f"_count must be a whole number, got {value!r}.") from None
            if count < 0:
                raise BadRequest("_count must not be negative.")
            plan.count = min(count, self.max_count)
            plan.used.append((name, str(plan.count)))
        elif name == "_sort":
            plan.sort = self._sort(value)
            plan.used.append((name, value))
        elif name in ("_include", "_revinclude"):
            target_list = plan.includes if name == "_include" else plan.revincludes
            for item in _split(value):
                target_list.append(self._include(name, item))
            plan.used.append((name, value))
        elif name == "_summary":
            if value not in ("true", "false", "count", "data", "text"):
                raise BadRequest("_summary must be one of true, false, count, data, text.")
            plan.summary = None if value == "false" else value
            plan.used.append((name, value))
        elif name == "_elements":
            plan.elements = [e.strip() for e in value.split(",") if e.strip()]
            plan.used.append((name, value))
        elif name == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise BadRequest("_total must be one of none, estimate, accurate.")
            plan.total = value
            plan.used.append((name, value))
        elif name == "_format":
            if value not in ("json", "application/json", "application/fhir+json"):
                raise BadRequest("Only JSON is served (_format=json).", issue_code="not-supported")
        elif name == "_page":
            plan.page = value

    def _sort(self, value: str) -> list[Sort]:
        out: list[Sort] = []
        for raw in value.split(","):
            raw = raw.strip()
            desc = raw.startswith("-")
            name = raw.lstrip("-")
            param = self.params.get(name)
            if param is None:
                raise BadRequest(f"Cannot sort {self.resource_type} by unknown parameter {name!r}.")
            key = param.key(":s") if param.type is ParamType.STRING else param.key()
            if param.type is ParamType.TOKEN and param.name not in ("_id",):
                key = param.key()
            if any(s.key == key for s in out):
                raise BadRequest(f"_sort names {name!r} twice.")
            out.append(Sort(key, descending=desc))
        return out

    def _include(self, kind: str, item: str) -> Include:
        if item == "*":
            raise BadRequest(
                f"{kind}=* is not supported; name the parameter.", issue_code="not-supported"
            )
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise BadRequest(f"{kind} must be Type:param[:TargetType], got {item!r}.")
        source, pname = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        params = SEARCH_PARAMS.get(source)
        if params is None:
            raise BadRequest(f"{kind}: unknown resource type {source!r}.")
        if kind == "_include" and source != self.resource_type:
            raise BadRequest(f"_include must start with the searched type {self.resource_type}.")
        param = params.get(pname)
        if param is None or param.type is not ParamType.REFERENCE:
            raise BadRequest(f"{kind}: {source} has no reference parameter {pname!r}.")
        if target is not None and target not in param.targets:
            raise BadRequest(f"{kind}: {source}:{pname} cannot point at {target}.")
        if kind == "_revinclude" and target is None and self.resource_type not in param.targets:
            raise BadRequest(f"_revinclude: {source}:{pname} never points at {self.resource_type}.")
        if kind == "_revinclude" and target is not None and target != self.resource_type:
            raise BadRequest(f"_revinclude: the target must be {self.resource_type}.")
        return Include(source, param, target)

    # --- chains --------------------------------------------------------------------------

    def _chain(self, plan: SearchPlan, name: str, value: str, strict: bool) -> None:
        head, _, inner = name.partition(".")
        base, _, target = head.partition(":")
        param = self.params.get(base)
        if param is None or param.type is not ParamType.REFERENCE:
            if strict:
                raise BadRequest(
                    f"{name!r}: {base!r} is not a reference parameter of {self.resource_type}."
                )
            plan.ignored.append(name)
            return
        if not target:
            if len(param.targets) != 1:
                raise BadRequest(
                    f"{name!r}: {base} may point at {', '.join(param.targets)}; name the type,"
                    f" e.g. {base}:{param.targets[0]}.{inner}."
                )
            target = param.targets[0]
        if target not in param.targets or target not in SEARCH_PARAMS:
            raise BadRequest(f"{name!r}: {base} cannot point at {target}.")
        if "." in inner:
            raise BadRequest(
                f"{name!r}: only one level of chaining is supported.", issue_code="not-supported"
            )
        inner_base = inner.partition(":")[0]
        if inner_base not in SEARCH_PARAMS[target]:
            raise BadRequest(f"{name!r}: {target} has no search parameter {inner_base!r}.")
        plan.chains.append(Chain(param, target, inner, value))
        plan.used.append((name, value))

    # --- predicates ----------------------------------------------------------------------

    def _predicates(
        self, plan: SearchPlan, param: SearchParam, modifier: str, value: str
    ) -> list[Predicate]:
        if param.type is ParamType.REFERENCE and modifier and modifier not in param.targets:
            raise BadRequest(
                f"{param.name}:{modifier}: the modifier must be one of {', '.join(param.targets)}.",
                issue_code="not-supported",
            )
        if param.type is not ParamType.REFERENCE and modifier not in _MODIFIERS[param.type]:
            raise BadRequest(
                f"Modifier :{modifier} is not supported on {param.type.value}"
                f" parameter {param.name}.",
                issue_code="not-supported",
            )
        values = _split(value)
        if any(v == "" for v in values):
            raise BadRequest(f"{param.name}: empty alternative in {value!r}.")
        t = param.type
        if t is ParamType.STRING:
            return [self._string(plan, param, modifier, values)]
        if t is ParamType.TOKEN:
            return [_token(param, modifier, values)]
        if t is ParamType.DATE:
            return [_any([_date(param, v) for v in values]), *_ne_needs_value(param, values)]
        if t is ParamType.REFERENCE:
            refs = [r for v in values for r in _reference(param, modifier, v)]
            return [In(param.key(), list(dict.fromkeys(refs)))]
        if t is ParamType.URI:
            if modifier == "below":
                return [_any([Prefix(param.key(), v) for v in values])]
            return [In(param.key(), values)]
        # QUANTITY, NUMBER: the number ranges OR-ed; units (quantity) must be one of those given.
        numbers = [_number(param, v) for v in values]
        units = [u for _, u in numbers if u is not None]
        preds = [_any([p for p, _ in numbers]), *_ne_needs_value(param, values)]
        if units:
            if len(units) != len(numbers):
                raise BadRequest(f"{param.name}: give a unit on every alternative or on none.")
            if len(set(units)) > 1:
                # Numbers and units are separate keys, so `5.4|..|g,6|..|mg` would also find
                # 5.4 mg: refused rather than answered wrongly.
                raise BadRequest(
                    f"{param.name}: alternatives with different units are not supported;"
                    " search once per unit.",
                    issue_code="not-supported",
                )
            preds.append(In(param.key(":u"), units[:1]))
        return preds

    def _string(
        self, plan: SearchPlan, param: SearchParam, modifier: str, values: list[str]
    ) -> Predicate:
        if modifier == "exact":
            return In(param.key(":exact"), values)
        if modifier == "contains":
            preds: list[Predicate] = []
            for v in values:
                text = fold(v).strip()
                if not text:
                    raise BadRequest(f"{param.name}:contains needs a non-blank value.")
                # Short needles: the index also holds each part's last one and two characters,
                # so a prefix of the grams finds every part containing them.
                preds.append(
                    Prefix(param.key(":g"), text)
                    if len(text) < 3
                    else AllOf(param.key(":g"), trigrams(text))
                )
            # Grams are a superset (order is lost): the page is re-checked on the bodies.
            plan.contains.append((param, values))
            return _any(preds)
        folded = [fold(v).strip() for v in values]
        if any(not f for f in folded):
            raise BadRequest(f"{param.name} needs a non-blank value.")
        return _any([Prefix(param.key(), f) for f in folded])


def trigrams(folded: str) -> list[str]:
    """The trigrams `:contains` looks up (a part shorter than three characters is itself)."""
    text = folded.strip()
    if len(text) < 3:
        return [text] if text else []
    return list(dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2)))


def _any(preds: list[Predicate]) -> Predicate:
    return preds[0] if len(preds) == 1 else AnyOf(preds)


def _token(param: SearchParam, modifier: str, values: list[str]) -> Predicate:
    if modifier == "text":
        return _any([AllOf(param.key(":text"), terms(v) or [fold(v)]) for v in values])
    tokens = [_token_parts(v) for v in values]
    if param.name == "_id":
        return In(param.key(), tokens)
    pred = In(param.key(), tokens)
    return Not(pred) if modifier == "not" else pred


def _reference(param: SearchParam, type_modifier: str, value: str) -> list[str]:
    value = value.split("/_history/")[0]
    parts = [p for p in value.split("/") if p]
    if not parts:
        raise BadRequest(f"{param.name}: empty reference.")
    if "://" in value or len(parts) >= 2:
        if len(parts) < 2:
            raise BadRequest(f"{param.name}: cannot read reference {value!r}.")
        rtype, rid = parts[-2], parts[-1]
        if type_modifier and rtype != type_modifier:
            raise BadRequest(f"{param.name}:{type_modifier} given a {rtype} reference.")
        return [f"{rtype}/{rid}"]
    types = [type_modifier] if type_modifier else list(param.targets)
    return [f"{t}/{parts[0]}" for t in types]


def _ne_needs_value(param: SearchParam, values: list[str]) -> list[Predicate]:
    """For `ne`: the resource must have a value to differ from. The storage's `Not` also
    matches records without the key (right for `:not`), but `ne` compares the resource's own
    value, so one without any is no match (as in HAPI and Medplum)."""
    if param.name == "_lastUpdated" or not any(_prefix(v, ("ne",))[0] == "ne" for v in values):
        return []
    if param.type is ParamType.DATE:
        return [Span(param.key(), low=Bounds(ge=_LOW))]
    return [Range(param.key(), ge=-sys.float_info.max)]


def _prefix(value: str, allowed: Sequence[str]) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in allowed and not value[:2].isdigit():
        return value[:2], value[2:]
    return "eq", value


def _date(param: SearchParam, value: str) -> Predicate:
    prefix, raw = _prefix(value, _DATE_PREFIXES)
    try:
        a, b = date_span(raw)
    except (ValueError, OverflowError):  # OverflowError: a zone offset past year 1 or 9999
        raise BadRequest(
            f"{param.name}: {raw!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD, or a"
            " dateTime with a time zone), not at the very edge of year 1 or 9999.",
            errors=[{"expression": param.name, "message": "invalid date"}],
        ) from None
    if param.name == "_lastUpdated":  # a date parameter on an instant key, not a span
        return _instant(param, prefix, a, b)
    key = param.key()
    if prefix == "eq":
        return Span(key, low=Bounds(ge=a), high=Bounds(le=b))
    if prefix == "ne":
        return Not(Span(key, low=Bounds(ge=a), high=Bounds(le=b)))
    if prefix == "gt":
        return Span(key, high=Bounds(gt=b))
    if prefix == "lt":
        return Span(key, low=Bounds(lt=a))
    if prefix == "ge":
        return Span(key, high=Bounds(gt=a))
    if prefix == "le":
        return Span(key, low=Bounds(lt=b))
    if prefix == "sa":
        return Span(key, low=Bounds(ge=b))
    if prefix == "eb":
        return Span(key, high=Bounds(le=a))
    # ap: within 10% of the distance from now (at least a day), as the spec suggests.
    low, high = _approximately(a, b)
    return Span(key, low=Bounds(lt=high), high=Bounds(gt=low))


def _instant(param: SearchParam, prefix: str, a: datetime, b: datetime) -> Predicate:
    key = param.key()
    if prefix == "eq":
        return Range(key, ge=a, lt=b)
    if prefix == "ne":
        return Not(Range(key, ge=a, lt=b))
    if prefix in ("gt", "sa"):
        return Range(key, ge=b)
    if prefix in ("lt", "eb"):
        return Range(key, lt=a)
    if prefix == "ge":
        return Range(key, ge=a)
    if prefix == "le":
        return Range(key, lt=b)
    low, high = _approximately(a, b)
    return Range(key, ge=low, lt=high)


def _approximately(a: datetime, b: datetime) -> tuple[datetime, datetime]:
    """`ap`: within 10% of the distance from now (at least a day), as the spec suggests;
    clamped to the calendar (datetime arithmetic past year 1 or 9999 overflows)."""
    gap = max(abs(datetime.now(UTC) - a) / 10, timedelta(days=1))
    low = a - gap if a - _LOW > gap else _LOW
    high = b + gap if _HIGH - b > gap else _HIGH
    return low, high


def _number(param: SearchParam, value: str) -> tuple[Predicate, str | None]:
    """The range a number (or quantity) value stands for, and its unit token if any."""
    prefix, raw = _prefix(value, _NUMBER_PREFIXES)
    number, _, unit = raw.partition("|")
    try:
        d = Decimal(number)
    except InvalidOperation:
        raise BadRequest(f"{param.name}: {number!r} is not a number.") from None
    if not d.is_finite():
        raise BadRequest(f"{param.name}: {number!r} is not a finite number.")
    # Precision of the value as written: 5.4 means [5.35, 5.45).
    exp = d.as_tuple().exponent
    half = Decimal(5) * Decimal(10) ** (int(exp) - 1) if isinstance(exp, int) else Decimal(0)
    lo, hi, v = float(d - half), float(d + half), float(d)
    key = param.key()
    if prefix == "eq":
        pred: Predicate = Range(key, ge=lo, lt=hi)
    elif prefix == "ne":
        pred = Not(Range(key, ge=lo, lt=hi))
    elif prefix == "gt":
        pred = Range(key, gt=v)
    elif prefix == "lt":
        pred = Range(key, lt=v)
    elif prefix == "ge":
        pred = Range(key, ge=v)
    elif prefix == "le":
        pred = Range(key, le=v)
    else:  # ap: within 10%
        spread = abs(v) / 10
        pred = Range(key, ge=v - spread, le=v + spread)
    if not unit:
        return pred, None
    if param.type is not ParamType.QUANTITY:
        raise BadRequest(f"{param.name} is a number: it takes no unit.")
    # `5.4|http://unitsofmeasure.org|mg` or `5.4||mg` (any system); stored as token() forms.
    system, _, code = unit.partition("|")
    return pred, (f"{system}|{code}" if system and code else code or system)
