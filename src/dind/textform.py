"""Numbers in the compact text forms (stage plans, block-size mixes) that must parse back exactly."""


def format_number(value: float) -> str:
    """The short ``:g`` form when it reads back as the same float (0.5, 1e-05), else ``repr``
    (0.3333333333333333), so ``parse(str(x)) == x`` holds for every float."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


# ---- components with arguments: "name" or "name(key=value,...)" ---------------------------------

_WORDS = {"None": None, "null": None, "true": True, "True": True, "false": False, "False": False}


def format_value(value: object) -> str | None:
    """A plain value's text form (None, bools, numbers, simple strings), or None if it has none."""
    if value is None or isinstance(value, bool):
        return {None: "None", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if (
        isinstance(value, str)
        and value
        and value not in _WORDS
        and all(c.isalnum() or c in "_-." for c in value)
    ):
        try:
            float(value)
        except ValueError:
            return value
    return None


def parse_value(text: str) -> object:
    """The inverse of ``format_value``: None/true/false, an int, a float, else the string."""
    if text in _WORDS:
        return _WORDS[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """``text`` split at ``separator`` outside parentheses ("a(b=1,c=2),d" -> ["a(b=1,c=2)", "d"])."""
    pieces, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise ValueError(f"unbalanced ')' in {text!r}")
        if char == separator and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    if depth:
        raise ValueError(f"unbalanced '(' in {text!r}")
    return [*pieces, text[start:]]


def parse_call(text: str) -> tuple[str, dict[str, object]]:
    """ "name" or "name(key=value,...)" -> (name, {key: parsed value})."""
    name, paren, rest = text.partition("(")
    if not paren:
        return text, {}
    if not rest.endswith(")"):
        raise ValueError(f"expected name(key=value,...) (got {text!r})")
    arguments: dict[str, object] = {}
    for piece in filter(None, split_top_level(rest[:-1])):
        key, equals, value = piece.partition("=")
        if not equals or not key.isidentifier():
            raise ValueError(f"arguments must be key=value (got {piece!r} in {text!r})")
        if key in arguments:
            raise ValueError(f"argument {key!r} is given more than once (got {text!r})")
        arguments[key] = parse_value(value)
    return name, arguments


def format_call(name: str, component: object) -> str | None:
    """``name`` plus the init arguments of an attrs ``component`` that differ from their defaults
    ("posthoc_masked(chunks=8)"), or None when one of them has no plain text form."""
    import attrs

    if not attrs.has(type(component)):
        return None
    arguments = []
    for field in attrs.fields(type(component)):
        if not field.init:
            continue
        value = getattr(component, field.name)
        default = field.default.factory() if isinstance(field.default, attrs.Factory) else field.default
        if default is not attrs.NOTHING and _same(value, default):
            continue
        text = format_value(value)
        if text is None:
            return None
        arguments.append(f"{field.alias or field.name}={text}")
    return f"{name}({','.join(arguments)})" if arguments else name


def _same(value: object, default: object) -> bool:
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # tensors and other types without a plain truth value
        return False
