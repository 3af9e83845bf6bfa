"""The model's text made safe for a docstring: one clean phrase, an imperative summary, the
descriptions harvested from sections it wrote (`DocFill`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from repolsp.server.docgen.plan import DocPlan


@dataclass
class DocFill:
    """Descriptions for a plan; empty strings are rendered as TODO."""

    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)
    returns: str = ""
    raises: dict[str, str] = field(default_factory=dict)
    from_model: bool = False


_CODE_HINTS = re.compile(
    # "Return the sum..." is prose: `return`/`if`/`for` alone do not make a line code.
    r"(^\s*(def|class|import|func|fn|let|var|const|public|private|static|#|//|@|>>>|\*/)\b)"
    r"|[{};]|==|=>|->|\)\s*:|\w\(.*\)\s*$|\bself\.|\"{3}|'{3}|`{3}|\s[=+*/%]\s|\w\[|\w\.\w+\("
)


def clean_phrase(raw: str, max_chars: int = 120, forbid: tuple[str, ...] = ()) -> str | None:
    """The first sentence of ``raw`` as a docstring phrase, or None when it is not sane prose
    (code, markup, repetition, too short/long, or one of ``forbid``). Capitalized, ends with '.'."""
    text = raw.strip().splitlines()[0].strip() if raw.strip() else ""
    text = re.sub(r"^[\s*/#\-:]+", "", text).strip()
    sentence = re.match(r"(.+?[.!?])(\s|$)", text)
    if sentence:
        text = sentence.group(1)
    text = text.strip().rstrip(",;:")
    if not text or len(text) > max_chars or _CODE_HINTS.search(text):
        return None
    words = re.findall(r"[A-Za-z']+", text)
    if len(words) < 2 or sum(len(w) for w in words) < 0.6 * len(text.replace(" ", "")):
        return None
    lowered = [w.lower() for w in words]
    if len(words) <= 2 and lowered[0] in ("return", "yield", "raise", "print", "pass", "if", "for", "while"):
        return None  # `return b`: a statement, not a description
    if max(lowered.count(w) for w in set(lowered)) > 3 or text.lower().startswith(("todo", "fixme")):
        return None
    if text.lower().rstrip(".") in {f.lower() for f in forbid}:
        return None
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    return text.replace("\\", "")


def summary_from_model(raw: str, plan: DocPlan) -> str | None:
    """The summary line from the model's continuation of an opened docstring/doc comment."""
    raw = raw.split('"""')[0].split("'''")[0].split("*/")[0]
    first = raw.strip().split("\n\n")[0].strip()
    if plan.language == "go":
        # The prompt ended with the name: the model continues "returns the sum ...".
        first = re.sub(r"^\s*//\s*", "", first)
        phrase = clean_phrase(f"{plan.name} {first.lstrip()}", forbid=(plan.name,))
        # clean_phrase capitalizes; an unexported Go name must stay as written.
        return plan.name + phrase[len(plan.name):] if phrase else None
    first = " ".join(line.strip().lstrip("*/").strip() for line in first.splitlines()[:1])
    first = re.sub(r"^@brief\s+", "", first)
    phrase = clean_phrase(first, forbid=(plan.name, humanize(plan.name)))
    if phrase and plan.language == "python" and plan.kind in ("function", "method"):
        phrase = imperative(phrase)
    return phrase


_SUBJECT = r"(?:this\s+is\s+an?\s+|this\s+|the\s+|an?\s+)?(?:\w+\s+)?(?:function|method|helper|routine|procedure|code)\s+"


_PREAMBLE = re.compile(
    # group 1: a base-form verb follows ("This function will return ...")
    rf"^{_SUBJECT}(?:that\s+|which\s+)?(will\s+|is\s+used\s+to\s+|can\s+be\s+used\s+to\s+|tries\s+to\s+)"
    # group 2: a third-person verb follows ("This is a helper function that returns ...")
    rf"|^{_SUBJECT}(that\s+|which\s+)?(?=\w+s\b)"
    # group 3: "Function to compute ..."
    r"|^(?:a\s+)?(?:function|method|helper)\s+(to\s+)",
    re.IGNORECASE,
)


def imperative(summary: str) -> str:
    """PEP 257's imperative mood: "This function returns x." -> "Return x."; anything that is not
    such a preamble followed by a verb is returned unchanged."""
    match = _PREAMBLE.match(summary)
    if not match:
        return summary
    rest = summary[match.end():]
    word, _, tail = rest.partition(" ")
    base_form = match.group(1) is not None or match.group(3) is not None
    if not base_form:
        lower = word.lower()
        if lower in ("is", "are", "was", "has", "can", "should", "must", "may"):
            return summary
        if lower == "does":
            word = "do"
        elif lower.endswith("ies") and len(lower) > 4:
            word = word[:-3] + "y"
        elif lower.endswith(("sses", "shes", "ches", "xes", "zes", "oes")):
            word = word[:-2]
        elif lower.endswith("s") and not lower.endswith("ss"):
            word = word[:-1]
        else:
            return summary
    if not word:
        return summary
    return (word[:1].upper() + word[1:] + (" " + tail if tail else "")).strip()


def humanize(name: str) -> str:
    """``compute_total`` / ``computeTotal`` -> ``compute total``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.strip("_"))
    return spaced.replace("_", " ").lower()


_PY_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


_SPHINX_LINE = re.compile(r"^\s*:(?:param|ivar)\s+(?:[\w\[\], .|]+\s)?(\*{0,2}\w+)\s*:\s*(.+)$")


_TAG_LINE = re.compile(r"^\s*\*?\s*@param\s+(?:\{[^}]*\}\s*)?\[?([\w$]+)[^\s]*\s*(?:-\s*)?(.+)$")


_TAG_RETURN = re.compile(r"^\s*\*?\s*@returns?\s+(?:\{[^}]*\}\s*)?(.+)$")


_PY_RETURN_LINE = re.compile(r"^\s*(?:[\w\[\], .|]+:\s*)?(.+)$")


def harvest_sections(raw: str, plan: DocPlan) -> DocFill:
    """Parameter/return descriptions the model wrote while continuing the sections prompt.

    ``raw`` starts right after the first parameter's ``name (type):`` label (or ``@param name``),
    so its first line is that parameter's description.
    """
    fill = DocFill()
    text = raw.split('"""')[0].split("'''")[0].split("*/")[0]
    lines = text.splitlines()
    names = {p.name.lstrip("*"): p.name for p in plan.params}
    if plan.params and lines:
        phrase = clean_phrase(lines[0], forbid=(plan.params[0].name,))
        if phrase:
            fill.params[plan.params[0].name] = phrase
        lines = lines[1:]
    in_returns = in_raises = False
    raised = set(plan.raises)
    numpy_name: str | None = None  # numpy style: a `name : type` line, then its description
    for line in lines:
        stripped = line.strip().lstrip("*").strip()
        if not stripped:
            continue
        if numpy_name is not None:
            phrase = clean_phrase(stripped, forbid=(numpy_name,))
            if phrase and numpy_name not in fill.params:
                fill.params[numpy_name] = phrase
            numpy_name = None
            continue
        numpy = re.match(r"^(\*{0,2}\w+)\s*(?::\s*[^:]*)?$", stripped) if plan.style == "numpy" else None
        if numpy and numpy.group(1).lstrip("*") in names and not in_returns:
            numpy_name = names[numpy.group(1).lstrip("*")]
            continue
        if re.match(r"^(Returns?|Yields?):?$", stripped) or re.match(r"^-{3,}$", stripped):
            in_returns = stripped.lower().startswith(("return", "yield")) or in_returns
            in_raises = False
            continue
        if re.match(r"^(Raises|Args|Arguments|Attributes|Parameters|Examples?|Notes?)\b", stripped):
            in_returns, in_raises = False, stripped.startswith("Raises")
            continue
        raises = re.match(r"^(?:@throws\s+\{?|:raises\s+)?([\w.]+)\}?\s*:?\s+(.+)$", stripped)
        if raises and raises.group(1) in raised and (in_raises or stripped.startswith(("@throws", ":raises"))):
            phrase = clean_phrase(raises.group(2), forbid=(raises.group(1),))
            if phrase and raises.group(1) not in fill.raises:
                fill.raises[raises.group(1)] = phrase
            continue
        match = (_TAG_LINE.match(line) or _SPHINX_LINE.match(line)
                 or (None if in_returns else _PY_ARG_LINE.match(line)))
        if match and match.group(1).lstrip("*") in names:
            full = names[match.group(1).lstrip("*")]
            phrase = clean_phrase(match.group(2), forbid=(full,))
            if phrase and full not in fill.params:
                fill.params[full] = phrase
            continue
        ret = _TAG_RETURN.match(line) or re.match(r"^\s*:returns?:\s*(.+)$", line)
        if ret is None and in_returns:
            ret = _PY_RETURN_LINE.match(line)
        if ret and not fill.returns:
            fill.returns = clean_phrase(ret.group(1)) or ""
            in_returns = False
    return fill
