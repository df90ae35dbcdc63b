"""Numbers in the compact text forms (stage plans, block-size mixes) that must parse back exactly."""


def format_number(value: float) -> str:
    """The short ``:g`` form when it reads back as the same float (0.5, 1e-05), else ``repr``
    (0.3333333333333333), so ``parse(str(x)) == x`` holds for every float."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))
