"""Every command in README.md and docs/*.md is executed or parsed here, and every relative link resolves.

Commands are taken from fenced code blocks, indented code blocks and inline code spans whose
command starts with `dvc`, `make`, `python`, `kaggle` or `.venv/bin/dvc` (after `!`, `VAR=value` and
`time` prefixes, and split on `&&`, as in Kaggle Notebook lines such as `!cd x && make install`).

- `dvc exp run` / `dvc repro`: every `-S`/`--set-param` value goes through DVC's own override
  parser (Hydra's grammar, `dvc.utils.hydra`), its key must be a key path of params.yaml, and
  applying it to a copy of params.yaml (DVC's `apply_overrides`) must set exactly the parsed
  value; repro/exp run targets must be stages of dvc.yaml.
- every dvc command line parses with DVC's own argument parser, and each distinct subcommand
  answers `dvc <subcommand> --help` with exit status 0 (one call per subcommand).
- `make X`: X is a target of the Makefile.
- `python path` / `python -m module`: the path exists / the module is importable.
- `kaggle ...`: parses with the Kaggle CLI's own argument parser (`kaggle.cli`), offline.
"""
from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DVC = Path(sys.executable).parent / "dvc"
PROGRAMS = {"dvc": "dvc", ".venv/bin/dvc": "dvc", "make": "make", "python": "python", "python3": "python",
            ".venv/bin/python": "python", "kaggle": "kaggle"}
SET_PARAM = ("-S", "--set-param")

# The folder example is easy to get wrong (Hydra's grammar needs the braces quoted inside the
# value): the strings each of these keys must end up as, wherever the docs set them.
FOLDER_EXAMPLE = {
    "folder.source": "/data/mine",
    "folder.train_images": "images/*.png",
    "folder.mask": ("../masks/{stem}.png", "../masks/{stem}_{class}.png"),  # index masks, or a file per class
    "folder.group_regex": r"^(case\d+)_",
}


def intended(key: str, value) -> bool:
    wanted = FOLDER_EXAMPLE[key]
    return value in wanted if isinstance(wanted, tuple) else value == wanted


@dataclass(frozen=True)
class Command:
    page: str  # file name relative to the repository
    line: int  # where the command starts
    argv: tuple[str, ...]  # after the program, shell-split
    program: str  # dvc | make | python | kaggle

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.program} {shlex.join(self.argv)}"


# --- extraction --------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)


def split_page(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(code lines, prose blocks) of a markdown page, each with its 1-based line number.

    Code lines come from fenced blocks and from indented blocks (4 spaces or a tab after a
    blank line); a trailing backslash joins a line with the next. Prose blocks are paragraphs
    (runs of non-code lines), so an inline code span may wrap across lines.
    """
    code: list[tuple[int, str]] = []
    prose: list[tuple[int, str]] = []
    lines = text.splitlines()
    fence = None
    in_indented = False
    paragraph: list[str] = []
    paragraph_start = 0
    pending = ""
    pending_start = 0

    def end_paragraph():
        nonlocal paragraph
        if paragraph:
            prose.append((paragraph_start, "\n".join(paragraph)))
        paragraph = []

    def add_code(number: int, line: str):
        nonlocal pending, pending_start
        if not pending:
            pending_start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            return
        code.append((pending_start, pending + line))
        pending = ""

    previous_blank = True
    for number, line in enumerate(lines, 1):
        if fence is not None:
            if FENCE.match(line) and line.strip().startswith(fence):
                fence = None
            else:
                add_code(number, line)
            previous_blank = False
            continue
        match = FENCE.match(line)
        if match:
            end_paragraph()
            fence = match.group(1)
            in_indented = False
            previous_blank = False
            continue
        blank = not line.strip()
        indented = line.startswith(("    ", "\t")) and not blank
        if indented and (previous_blank or in_indented) and not paragraph:
            in_indented = True
            add_code(number, line.strip())
        elif blank:
            end_paragraph()
            # a blank line inside an indented block does not end it
        else:
            in_indented = False
            if not paragraph:
                paragraph_start = number
            paragraph.append(line)
        previous_blank = blank
    end_paragraph()
    assert fence is None, "unclosed code fence"
    return code, prose


def strip_prefixes(tokens: list[str]) -> list[str]:
    """Drop what comes before the program: `!` of a notebook line, `VAR=value`, `time`."""
    tokens = list(tokens)
    if tokens and tokens[0].startswith("!"):
        tokens[0] = tokens[0][1:]
        if not tokens[0]:
            tokens.pop(0)
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        tokens.pop(0)
    if tokens and tokens[0] in ("time", "/usr/bin/time"):
        tokens.pop(0)
        while tokens and tokens[0].startswith("-"):
            tokens.pop(0)
    return tokens


def commands_in(text: str, page: str, line: int) -> list[Command]:
    """The commands of one shell line (`a && b` gives two); other programs are left out."""
    tokens = shlex.split(text.replace("\n", " "), comments=True)
    found = []
    part: list[str] = []
    for token in [*tokens, "&&"]:
        if token not in ("&&", "||", ";"):
            part.append(token)
            continue
        part = strip_prefixes(part)
        if len(part) >= 2 and part[0] in PROGRAMS:
            found.append(Command(page, line, tuple(part[1:]), PROGRAMS[part[0]]))
        part = []
    return found


def starts_with_program(text: str) -> bool:
    text = text.lstrip("!").lstrip()
    while re.match(r"[A-Za-z_][A-Za-z0-9_]*=\S*\s", text):
        text = text.split(None, 1)[1]
    text = re.sub(r"^(time|/usr/bin/time(\s+-\w+)*)\s+", "", text)
    return any(text.startswith(program + " ") for program in PROGRAMS) or "&&" in text


@cache
def all_commands() -> tuple[Command, ...]:
    found: list[Command] = []
    for path in PAGES:
        page = str(path.relative_to(ROOT))
        code, prose = split_page(path.read_text(encoding="utf-8"))
        for number, line in code:
            if line.strip():
                found += commands_in(line, page, number)
        for start, block in prose:
            for match in INLINE.finditer(block):
                span = " ".join(match.group(2).split())
                if starts_with_program(span):
                    number = start + block[:match.start()].count("\n")
                    found += commands_in(span, page, number)
    return tuple(found)


def of(program: str) -> list[Command]:
    return [command for command in all_commands() if command.program == program]


# --- what the commands refer to ----------------------------------------------------------

@cache
def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def key_paths(tree: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, dict):
            paths |= key_paths(value, path + ".")
    return paths


def lookup(tree: dict, dotted: str):
    for key in dotted.split("."):
        tree = tree[key]
    return tree


@cache
def stage_names() -> set[str]:
    return set(yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


@cache
def make_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([^\s:#=][^:#=]*?)\s*::?(?!=)", line)
        if match:
            targets |= set(match.group(1).split())
    return targets - {".PHONY"}


@cache
def dvc_parser():
    from dvc.cli.parser import get_main_parser

    return get_main_parser()


def subcommand(argv: tuple[str, ...]) -> tuple[str, ...]:
    """The (sub)command words of a dvc command line: `exp run`, `repro`, `queue start`, ..."""
    import argparse

    parser, words = dvc_parser(), []
    for word in argv:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word.startswith("-") or word not in actions[0].choices:
            break
        words.append(word)
        parser = actions[0].choices[word]
    return tuple(words)


def parse_dvc(argv: tuple[str, ...]):
    """DVC's own argument parsing of a command line (nothing runs); fails on unknown options."""
    import contextlib
    import io

    from dvc.cli import DvcParserError

    output = io.StringIO()
    try:
        with contextlib.redirect_stderr(output), contextlib.redirect_stdout(io.StringIO()):
            return dvc_parser().parse_args(list(argv))
    except (SystemExit, DvcParserError):
        pytest.fail(f"dvc {shlex.join(argv)}: DVC's parser refuses it (its message is in the captured log) "
                    f"{output.getvalue().strip()[-300:]}")


def set_params(command: Command) -> list[str]:
    argv, values = command.argv, []
    for i, token in enumerate(argv):
        if token in SET_PARAM:
            assert i + 1 < len(argv), f"{command}: {token} without a value"
            values.append(argv[i + 1])
        elif token.startswith("--set-param="):
            values.append(token.split("=", 1)[1])
    # the shell expands $HOME and the like before DVC sees the value
    return [os.path.expandvars(value) for value in values]


def runs_pipeline(command: Command) -> bool:
    return subcommand(command.argv) in (("exp", "run"), ("repro",))


# --- tests -------------------------------------------------------------------------------

def test_the_extractor_finds_the_commands():
    commands = all_commands()
    assert len(commands) >= 40, f"only {len(commands)} commands found: {[str(c) for c in commands]}"
    runs = [c for c in of("dvc") if runs_pipeline(c)]
    assert len(runs) >= 15
    assert sum(bool(set_params(c)) for c in runs) >= 10
    assert len(of("make")) >= 5 and len(of("python")) >= 5
    readme = {c.argv for c in commands if c.page == "README.md"}
    # the README's two commands, the per-dataset table, and the notebook lines
    for expected in [("run",), ("test",), ("repro",), ("install",),
                     ("exp", "run", "-S", "base.dataset=lgg")]:
        assert expected in readme, f"{expected} not found in README.md"
    assert any(c.argv[:4] == ("exp", "run", "-S", "base.dataset=folder") for c in of("dvc"))
    for page in PAGES:
        assert any(c.page == str(page.relative_to(ROOT)) for c in commands), f"no command found in {page.name}"


def test_the_readme_dataset_commands_set_only_the_dataset_and_where_it_is():
    """The plan chooses size, batch, steps and lr: the README's commands say which data, never how to train."""
    runs = [c for c in of("dvc") if c.page == "README.md" and runs_pipeline(c) and set_params(c)]
    assert len(runs) >= 6
    for command in runs:
        keys = {value.split("=", 1)[0] for value in set_params(command)}
        assert "base.dataset" in keys, command
        assert all(key == "base.dataset" or key.endswith(".source") or key.startswith("folder.") for key in keys), \
            command


def check_set_params(command: Command, scratch: Path) -> None:
    """Each -S value parses with DVC's grammar, names a key of params.yaml, and applies as parsed."""
    from dvc.utils.hydra import apply_overrides, to_hydra_overrides

    values = set_params(command)
    try:
        overrides = to_hydra_overrides(values)
    except Exception as error:  # noqa: BLE001 - any parse error is the failure we look for
        pytest.fail(f"{command}: -S values do not parse: {str(error).splitlines()[0]}")
    known = key_paths(params())
    for override in overrides:
        key = override.key_or_group
        if override.is_add():  # +models.fpn=...: a new key, under a section that exists
            assert key.rpartition(".")[0] in known and key not in known, f"{command}: cannot add {key}"
        else:
            assert key in known, f"{command}: {key} is not a key of params.yaml"
        assert not override.is_sweep_override(), f"{command}: {override.input_line} is a sweep"
        if key in FOLDER_EXAMPLE and command.page != "docs/competition.md":  # its own layouts (see below)
            assert intended(key, override.value()), (
                f"{command}: {key} parses to {override.value()!r}, not {FOLDER_EXAMPLE[key]!r}")
    if values:
        copy = scratch / "params.yaml"
        shutil.copy(ROOT / "params.yaml", copy)
        apply_overrides(copy, values)  # what `dvc exp run -S` does to params.yaml
        applied = yaml.safe_load(copy.read_text(encoding="utf-8"))
        for override in overrides:
            assert lookup(applied, override.key_or_group) == override.value(), str(command)


def check_dvc_line(command: Command) -> None:
    """DVC's parser accepts the line; repro / exp run targets are stages of dvc.yaml."""
    args = parse_dvc(command.argv)
    assert subcommand(command.argv), f"{command}: no dvc subcommand"
    if runs_pipeline(command):
        for target in getattr(args, "targets", None) or []:
            assert target.split("@")[0] in stage_names(), f"{command}: no stage {target} in dvc.yaml"


def test_set_params_parse_with_dvcs_grammar_and_name_real_params(tmp_path):
    runs = [c for c in of("dvc") if runs_pipeline(c)]
    for i, command in enumerate(runs):
        (tmp_path / str(i)).mkdir()
        check_set_params(command, tmp_path / str(i))
    assert sum(bool(set_params(c)) for c in runs) >= 10


def test_the_folder_example_sets_the_intended_strings():
    from dvc.utils.hydra import to_hydra_overrides

    # docs/competition.md's per-format examples are run (tests/test_pipeline_formats.py) or loaded
    # (tests/datasets/adapters/test_doc_formats.py) on trees in their own layouts instead
    folder_runs = [c for c in of("dvc") if runs_pipeline(c) and "base.dataset=folder" in c.argv
                   and c.page != "docs/competition.md"]
    assert folder_runs, "no `dvc exp run -S base.dataset=folder ...` example"
    for command in folder_runs:
        parsed = {o.key_or_group: o.value() for o in to_hydra_overrides(set_params(command))}
        assert all(intended(k, parsed.get(k)) for k in FOLDER_EXAMPLE ), str(command)


def test_dvc_command_lines_parse_and_name_real_stages():
    for command in of("dvc"):
        check_dvc_line(command)


def test_dvc_subcommands_exist():
    subcommands = sorted({subcommand(c.argv) for c in of("dvc")})
    assert len(subcommands) >= 10, subcommands

    def help_of(words):
        result = subprocess.run([str(DVC), *words, "--help"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
        return words, result

    with ThreadPoolExecutor(max_workers=8) as pool:
        for words, result in pool.map(help_of, subcommands):
            assert result.returncode == 0, f"dvc {' '.join(words)} --help: {result.stderr.strip()}"


def test_make_targets_exist():
    targets = make_targets()
    assert {"install", "run", "test"} <= targets
    for command in of("make"):
        names = [a for a in command.argv if not a.startswith("-") and "=" not in a]
        assert names, f"{command}: no target"
        for name in names:
            assert name in targets, f"{command}: no target {name} in the Makefile"


def test_python_scripts_and_modules_exist():
    for command in of("python"):
        argv = command.argv
        if argv[0] == "-m":
            assert find_spec(argv[1]) is not None, f"{command}: no module {argv[1]}"
        else:
            assert (ROOT / argv[0]).is_file(), f"{command}: {argv[0]} does not exist"


def kaggle_parser():
    """The Kaggle CLI's parser for the commands the docs use (competitions, datasets, kernels), as `kaggle.cli.main`
    builds it; importing the package without credentials prints its help, which is swallowed."""
    import argparse
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from kaggle import cli
    parser = argparse.ArgumentParser(prog="kaggle", exit_on_error=False)
    commands = parser.add_subparsers(dest="command")
    commands.required = True
    for add in (cli.parse_competitions, cli.parse_datasets, cli.parse_kernels):
        add(commands)
    return parser


def test_kaggle_commands_parse_with_the_kaggle_cli():
    commands = of("kaggle")
    assert len(commands) >= 5  # the code-competition steps, at least
    for command in commands:
        argv = [a.replace("<owner>", "alice") for a in command.argv]
        try:
            with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
                kaggle_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{command}: the Kaggle CLI does not accept it")


def test_readme_is_a_front_page():
    readme = ROOT / "README.md"
    assert readme.stat().st_size < 14_000
    text = readme.read_text(encoding="utf-8")
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in text, f"README.md does not link docs/{page.name}"


# --- links -------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces to '-'."""
    seen: dict[str, int] = {}
    code, _ = split_page(path.read_text(encoding="utf-8"))
    code_lines = {line for line, _ in code}
    result = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if number in code_lines or FENCE.match(line):
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def test_relative_links_resolve():
    checked = 0
    for page in PAGES:
        _, prose = split_page(page.read_text(encoding="utf-8"))
        for _, block in prose:
            for match in LINK.finditer(block):
                target = match.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                    continue
                file, _, anchor = target.partition("#")
                path = (page.parent / file).resolve() if file else page
                assert path.exists(), f"{page.name}: link {target} points to a missing file"
                if anchor:
                    assert anchor in anchors(path), f"{page.name}: link {target}: no such heading in {path.name}"
                checked += 1
    assert checked >= 10
