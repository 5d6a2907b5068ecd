"""The SLO language's grammar (lark, LALR), its parse into a tree, and the one-line errors with a
column that every mistake in an expression becomes. :mod:`harness.verdict.language` turns the
tree into the model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, NoReturn

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from harness.errors import BadInputError
from harness.verdict.units import DURATION_UNITS

__all__ = [
    "MAX_LENGTH",
    "as_token",
    "as_tree",
    "error_at",
    "only_tree",
    "parse_tree",
    "position",
    "quote",
    "tokens",
]

# An SLO is one line of a scenario; a cap keeps a pathological string (thousands of nested
# parentheses) from costing time or recursion depth anywhere downstream.
MAX_LENGTH: Final = 400

GRAMMAR: Final = r"""
slo: metric scope* CMP (QUANTITY | metric) scope*
?scope: window | slide
guard: "abort" "if" metric CMP QUANTITY "for" QUANTITY

metric: METRIC ("(" arg ("," arg)* ")")?
?arg: pred                  -> arg_pred
    | "where" pred          -> arg_where
    | "baseline" NAME       -> arg_baseline
    | NAME                  -> arg_name

pred: conj ("or" conj)*
conj: atom ("and" atom)*
?atom: "status" CMP CODE    -> status_test
     | "name" CMP STRING    -> name_test
     | "(" pred ")"

window: "during" kind? NAME ("+" QUANTITY)?
slide: "over" "any" QUANTITY
!kind: "phase" | "fault"

CMP: "==" | "!=" | "<=" | ">=" | "<" | ">"
METRIC: /[A-Za-z][A-Za-z0-9_]*(\.[0-9]+)?/
CODE.2: /[0-9]{1,3}(?![0-9A-Za-z])|[1-5]xx/
NAME: /[A-Za-z0-9][A-Za-z0-9._-]*/
STRING: /"[^"\\\n]{1,200}"/
QUANTITY: /([0-9]+(\.[0-9]*)?|\.[0-9]+)([A-Za-z%][A-Za-z0-9.%]*)?/

%import common.WS
%ignore WS
"""

# LALR with lark's contextual lexer: a token is only lexed as what the parser can take at that
# point, so a fault named "kill-app-1" is never read as a number or a metric.
PARSER: Final = Lark(GRAMMAR, start=["slo", "guard"], parser="lalr", maybe_placeholders=False)

# Lark's terminal names, as a person would call them.
EXPECTED: Final = {
    "QUANTITY": "a number",
    "METRIC": "a metric",
    "CMP": "a comparison (==, !=, <, <=, >, >=)",
    "CODE": "a status code or class (503, 5xx)",
    "NAME": "a name",
    "STRING": 'a quoted request name like "/checkout"',
    "$END": "the end",
}


# --- parsing -----------------------------------------------------------------------------------


def parse_tree(text: str, start: str, where: str) -> Tree[Token]:
    if not isinstance(text, str):
        raise BadInputError(f"{where}: expected an expression string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise BadInputError(f"{where}: expression longer than {MAX_LENGTH} characters")
    try:
        return PARSER.parse(text, start=start)
    except UnexpectedInput as exc:
        syntax_error(text, where, exc)
    except (LarkError, RecursionError) as exc:  # not expected; still one line, still ours
        raise BadInputError(f"{where}: cannot parse {text!r}: {type(exc).__name__}") from None


def syntax_error(text: str, where: str, exc: UnexpectedInput) -> NoReturn:
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        at_end = token.type == "$END"
        pos = len(text) if at_end else (token.start_pos or 0)
        found = "" if at_end else str(token)
        expected = exc.expected
    elif isinstance(exc, UnexpectedCharacters):
        pos = min(exc.pos_in_stream or 0, len(text))
        found = text[pos : pos + 1]
        expected = exc.allowed or set()
    else:  # UnexpectedEOF, which the LALR parser reports as a token; kept for safety
        pos, found, expected = len(text), "", set()
    if not text.strip():
        what = "empty expression"
    else:
        what = f"unexpected {quote(found)}" if found else "unexpected end"
    hint = f"expected {expected_words(expected)}" if expected else ""
    if found in DURATION_UNITS or found == "%":
        before = text[:pos].rstrip()
        if before[-1:].isdigit():
            hint = f"write the unit right after the number: {before.split()[-1]}{found}"
    raise error_at(text, where, pos, what, hint)


def expected_words(names: set[str]) -> str:
    words = sorted({EXPECTED.get(name, quote(literal(name))) for name in names})
    if not words:
        return ""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def literal(terminal: str) -> str:
    # Anonymous terminals of the grammar's keywords and punctuation, by lark's naming.
    symbols = {"LPAR": "(", "RPAR": ")", "COMMA": ",", "PLUS": "+"}
    return symbols.get(terminal, terminal.lower())


def quote(text: str) -> str:
    return '"' + "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text) + '"'


def error_at(text: str, where: str, pos: int, what: str, hint: str = "") -> BadInputError:
    """``where: what at column N (hint): text with <<here>> at N``, on one line."""
    # Same length as the text, so the column still points at the right character.
    shown = "".join(ch if ch.isprintable() else " " for ch in text)
    hint = f" ({hint})" if hint else ""
    return BadInputError(
        f"{where}: {what} at column {pos + 1}{hint}: {shown[:pos]}<<here>>{shown[pos:]}"
    )


def only_tree(arg: Tree[Token]) -> Tree[Token]:
    return as_tree(arg.children[-1])


def as_tree(node: Tree[Token] | Token) -> Tree[Token]:
    assert isinstance(node, Tree), "the grammar puts a rule here"
    return node


def as_token(node: Tree[Token] | Token) -> Token:
    assert isinstance(node, Token), "the grammar puts a token here"
    return node


def position(node: Token | Tree[Token]) -> int:
    if isinstance(node, Token):
        return node.start_pos or 0
    for token in tokens(node):
        return token.start_pos or 0
    return 0


def tokens(tree: Tree[Token]) -> Iterator[Token]:
    for child in tree.children:
        if isinstance(child, Token):
            yield child
        else:
            yield from tokens(child)
