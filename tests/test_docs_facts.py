"""Facts in README.md and docs/*.md that the repository can check: no torch, no DVC run.

- docs/params.md's tables (header `param | default | meaning`) name every key of params.yaml and
  no other; each row's default is params.yaml's value, which is the config classes' default
  (`segpipe.config`). A row may group keys (`a.x` / `y`: `a.y`, defaults `1 / 2`), and a
  `<placeholder>` stands for any one key (`<dataset>.source`: every dataset's; its default is
  checked with the placeholder filled in, for each key no row names on its own). A row naming a
  section (`models`) covers every key under it. No other page has such a table: a default has
  one home, and the other pages link to it.
- a param-like name in an inline code span (`train.lr`, `folder.classes: [a]`) is a key of
  params.yaml.
- the stage lists (README's "The stages", pipeline.md's stage table, arrow line and "What each
  stage does") name exactly the stages of dvc.yaml.
- pipeline.md's code map names every folder and module of src/segpipe/ and every script of
  stages/, and nothing that does not exist; any path under src/, stages/, tests/, bench/ and any
  dotted name `segpipe.x.y` (a module, or a name a module defines) that a page mentions exists.
- a size stated as "`<an output in dvc.lock>`: N MB" (or KB, GB, bytes) is dvc.lock's size, and
  a table headed "metric (`<file>.json`) | value" quotes that committed metrics file.
- a `docs/<page>.md#anchor` that the code, dvc.yaml or params.yaml mentions resolves.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
SRC = ROOT / "src" / "segpipe"
PLACEHOLDER = re.compile(r"<[^<>]+>")
FENCE = re.compile(r"^\s*(```|~~~)")
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


# --- reading the pages -------------------------------------------------------------------

def text_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) outside fenced and indented code blocks."""
    lines, fence, previous_blank, indented = [], None, True, False
    for number, line in enumerate(text_of(path).splitlines(), 1):
        if fence:
            fence = None if FENCE.match(line) and line.strip().startswith(fence) else fence
            continue
        match = FENCE.match(line)
        if match:
            fence = match.group(1)
            continue
        blank = not line.strip()
        if line.startswith(("    ", "\t")) and not blank and (previous_blank or indented):
            indented = True
        elif not blank:
            indented = False
            lines.append((number, line))
        previous_blank = blank
    return lines


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def tables(path: Path) -> list[tuple[list[str], list[tuple[int, list[str]]]]]:
    """The markdown tables of a page: (header cells, [(line, cells)] of the body)."""
    found, current, last = [], None, -2
    for number, line in prose_lines(path):
        if not line.lstrip().startswith("|"):
            current = None
            continue
        if current is None or number != last + 1:
            current = (cells(line), [])
            found.append(current)
        elif not re.fullmatch(r"[\s|:-]+", line):
            current[1].append((number, cells(line)))
        last = number
    return found


def section(path: Path, heading: str) -> list[tuple[int, str]]:
    """The prose lines under `heading` (a full heading line), up to the next heading of its level or higher."""
    level = heading.split(" ")[0]
    lines, inside = [], False
    for number, line in prose_lines(path):
        if line.strip() == heading:
            inside = True
            continue
        if inside and re.match(r"^#{1,%d}\s" % len(level), line):
            break
        if inside:
            lines.append((number, line))
    assert inside, f"{path.name}: no heading {heading!r}"
    return lines


# --- params ------------------------------------------------------------------------------

@cache
def params() -> dict:
    return yaml.safe_load(text_of(ROOT / "params.yaml"))


def leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value of every leaf (a value that is not a dict, or an empty dict)."""
    found = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            found.update(leaves(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def key_paths(tree: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        paths.add(f"{prefix}{key}")
        if isinstance(value, dict):
            paths |= key_paths(value, f"{prefix}{key}.")
    return paths


def matches(pattern: str, key: str) -> dict[str, str] | None:
    """The placeholders' values when `pattern` (`<dataset>.source`) names `key`, else None."""
    names = PLACEHOLDER.findall(pattern)
    regex = "".join(f"(?P<p{i}>[^.]+)" if part in names else re.escape(part)
                    for i, part in enumerate(re.split(r"(<[^<>]+>)", pattern)) if part)
    found = re.fullmatch(regex, key)
    if not found:
        return None
    return {part: found.group(f"p{i}") for i, part in enumerate(re.split(r"(<[^<>]+>)", pattern))
            if part in names}


def covers(pattern: str, key: str) -> bool:
    """Whether a row naming `pattern` documents leaf `key` (the key itself, or a section above it)."""
    parts = key.split(".")
    return any(matches(pattern, ".".join(parts[:n])) is not None for n in range(1, len(parts) + 1))


def parse_value(cell: str):
    """A default as written in a table cell: YAML (`auto`, 0.5, [1, 2], null), else the bare string."""
    text = cell.replace("`", "").strip()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def same(a, b) -> bool:
    """Equal as params: numbers by value (15 == 15.0), tuples as lists, dicts key by key."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def lookup(tree: dict, dotted: str):
    for key in dotted.split("."):
        tree = tree[key]
    return tree


def params_rows() -> list[tuple[str, list[str], list[str]]]:
    """(where, keys, default cells) of every row of docs/params.md's param tables.

    In a row of several keys, a key after the first is relative to the first one's parent
    (`synthetic.height` / `width`) unless it starts with a section of params.yaml."""
    rows = []
    for header, body in tables(DOCS / "params.md"):
        if header[0].lower() != "param":
            continue
        assert [h.lower() for h in header[:2]] == ["param", "default"], f"params.md: table header {header}"
        for number, row in body:
            where = f"docs/params.md:{number}"
            spans = SPAN.findall(row[0])
            assert spans, f"{where}: no `key` in the first cell {row[0]!r}"
            parent = spans[0].rsplit(".", 1)[0]
            keys = [span if span.split(".")[0] in params() else f"{parent}.{span}" for span in spans]
            keys[0] = spans[0]
            defaults = [row[1]] if len(keys) == 1 else [part.strip() for part in row[1].split(" / ")]
            if len(defaults) != len(keys):  # reported by the defaults test; the keys still count
                defaults = [None] * len(keys)
            rows.append((where, keys, defaults))
    assert len(rows) >= 40, f"params.md: only {len(rows)} param rows found"
    return rows


def test_params_md_names_every_key_of_params_yaml():
    named = [key for _, keys, _ in params_rows() for key in keys]
    missing = [leaf for leaf in leaves(params()) if not any(covers(key, leaf) for key in named)]
    assert not missing, "docs/params.md has no row for:\n" + "\n".join(missing)


def test_params_md_names_only_keys_of_params_yaml():
    paths = key_paths(params())
    problems = [f"{where}: {key} is not a key of params.yaml" for where, keys, _ in params_rows() for key in keys
                if not any(matches(key, path) is not None for path in paths)]
    assert not problems, "\n".join(problems)


def test_params_md_defaults_are_params_yaml_values():
    concrete = {key for _, keys, _ in params_rows() for key in keys if not PLACEHOLDER.search(key)}
    paths = key_paths(params())
    problems, checked = [], 0
    for where, keys, defaults in params_rows():
        for key, cell in zip(keys, defaults):
            if not cell:
                problems.append(f"{where}: {key} has no default of its own (one per key: `a` / `b` | 1 / 2)")
                continue
            if not PLACEHOLDER.search(key) and key not in paths:  # reported by the test above
                continue
            if not PLACEHOLDER.search(key):
                actual = lookup(params(), key)
                if not same(parse_value(cell), actual):
                    problems.append(f"{where}: {key}: the table says {cell!r}, params.yaml {actual!r}")
                checked += 1
                continue
            # `<dataset>.source`: each key no row names itself, the placeholder filled in
            for path in sorted(paths - concrete):
                filled = matches(key, path)
                if filled is None:
                    continue
                expected = cell
                for name, value in filled.items():
                    expected = expected.replace(name, value)
                actual = lookup(params(), path)
                if not same(parse_value(expected), actual):
                    problems.append(f"{where}: {key}: the table says {cell!r}, params.yaml's {path} is {actual!r} "
                                    "(give it a row of its own)")
                checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 60


CLASS_DEFAULTS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pydantic import BaseModel
from segpipe import datasets
from segpipe.config.params import Params
from segpipe.config.sections import dataset_names

def defaults(model):
    found = {}
    for name, field in model.model_fields.items():
        value = field.get_default(call_default_factory=True)
        found[name] = defaults(type(value)) if isinstance(value, BaseModel) else value
    return found

sections = {name: defaults(datasets.adapter(name).Params) for name in dataset_names()}  # each adapter's own
print(json.dumps({**defaults(Params), **sections}))
"""


@cache
def class_defaults() -> dict:
    """The defaults the config classes of this checkout declare (before any validator runs), nested
    models as dicts, each dataset's section its adapter's `Params`; read in a fresh interpreter, so that it is this checkout's src/, not an
    installed copy's."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CLASS_DEFAULTS, str(ROOT / "src")], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def test_params_yaml_is_the_config_classes_defaults():
    """params.yaml (and so params.md) says what the code does when a key is left out."""
    declared = class_defaults()
    problems = []
    if set(declared) != set(params()):
        problems.append(f"params.yaml's sections {sorted(params())} differ from Params' {sorted(declared)}")
    in_yaml = {k: v for k, v in leaves(params()).items() if not k.startswith("models.")}  # models: names of your own
    in_code = {k: v for k, v in leaves(declared).items() if not k.startswith("models.")}
    problems += [f"params.yaml has {key}, the config classes do not" for key in sorted(in_yaml.keys() - in_code.keys())]
    problems += [f"the config classes have {key}, params.yaml does not" for key in sorted(in_code.keys() - in_yaml.keys())]
    problems += [f"params.yaml {key}: {in_yaml[key]!r}, but its config class defaults to {in_code[key]!r}"
                 for key in sorted(in_yaml.keys() & in_code.keys()) if not same(in_yaml[key], in_code[key])]
    assert not problems, "\n".join(problems)


def test_one_home_for_param_defaults():
    """Only docs/params.md has a table of params with their defaults; other pages link to it."""
    problems = [f"{page.name}:{body[0][0] - 2 if body else '?'}: a table of params and their defaults: "
                "link to params.md instead" for page in PAGES if page.name != "params.md"
                for header, body in tables(page) if {"param", "default"} <= {h.lower() for h in header}]
    assert not problems, "\n".join(problems)


PARAM_SPAN = re.compile(r"^(?:-S\s+|\+)?([a-z]+\.[A-Za-z_<>][\w<>]*(?:\.[\w<>]+)*)(?=$|[:=\s])")
FILE_SUFFIX = re.compile(r"\.(json|csv|py|png|npz|npy|pt|md|txt|yaml|gz|zip|safetensors|tsv|html)$")


def test_param_names_in_the_docs_exist():
    paths = key_paths(params())
    problems, checked = [], 0
    for page in PAGES:
        for number, line in prose_lines(page):
            for span in SPAN.findall(line):
                match = PARAM_SPAN.match(span.strip())
                if not match or FILE_SUFFIX.search(match.group(1)) or match.group(1).split(".")[0] not in params():
                    continue
                name = match.group(1)
                # keys of your own (`models.fpn`, `threshold.classes.spot`) go under a key that exists
                if not (any(matches(name, path) is not None for path in paths)
                        or name.split(".")[0] == "models" or name.startswith("threshold.classes.")):
                    problems.append(f"{page.name}:{number}: `{span}` names no key of params.yaml")
                checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 100


# --- stages ------------------------------------------------------------------------------

@cache
def stages() -> set[str]:
    return set(yaml.safe_load(text_of(ROOT / "dvc.yaml"))["stages"])


def stage_words(text: str) -> set[str]:
    """The words of a stage line (`a → b → c, d and e`), `train@<model>-<k>` counted as `train`."""
    return set(re.findall(r"[a-z_]+", re.sub(r"@<[^>]*>(-<[^>]*>)?", "", text))) - {"and"}


def differs(what: str, named: set[str]) -> list[str]:
    if named == stages():
        return []
    return [f"{what} names {sorted(named - stages())} that dvc.yaml lacks and lacks {sorted(stages() - named)}"]


def test_readme_stage_list_is_dvc_yaml():
    lines = section(ROOT / "README.md", "## The stages")
    arrows = [line for _, line in lines if "→" in line]
    assert len(arrows) == 1, "README.md's stages: one line of `a → b → ...`"
    bullets = set()
    for _, line in lines:
        if line.startswith("- "):
            bullets |= {span.split("@")[0] for span in SPAN.findall(line[2:].split(":")[0])}
    problems = differs("README.md's stage line", stage_words(arrows[0].rstrip(":"))) + \
        differs("README.md's stage bullets", bullets)
    assert not problems, "\n".join(problems)


def test_pipeline_stage_table_and_line_are_dvc_yaml():
    page = DOCS / "pipeline.md"
    table = next(body for header, body in tables(page) if header[0].lower() == "stage")
    arrows = [line for _, line in prose_lines(page) if "→" in line]
    assert arrows, "pipeline.md: no stage line `a → b → ...`"
    headings = {word for _, line in section(page, "## What each stage does") if line.startswith("### ")
                for word in stage_words(line)}
    problems = differs("pipeline.md's stage table", {(SPAN.findall(row[0]) or [row[0]])[0].split("@")[0] for _, row in table}) + \
        differs("pipeline.md's stage line", stage_words(arrows[0].rstrip(":")))
    if not stages() <= headings:
        problems.append(f"pipeline.md's 'What each stage does' has no heading for {sorted(stages() - headings)}")
    assert not problems, "\n".join(problems)


# --- code and paths ----------------------------------------------------------------------

def code_map() -> tuple[list[str], dict[str, str]]:
    """pipeline.md's code map: the files of its first line, and path -> description of each entry
    (`stages/`, `src/segpipe/core/`, `src/segpipe/rle.py`, ...)."""
    text = text_of(DOCS / "pipeline.md").split("## The code, by phase", 1)[1].split("\n## ", 1)[0]
    block = [line[4:] for line in text.splitlines() if line.startswith("    ")]
    assert block, "pipeline.md: no code map (an indented block) under 'The code, by phase'"
    entries: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    last = None
    for line in block[1:]:
        indent = len(line) - len(line.lstrip())
        name, _, rest = line.strip().partition(" ")
        if indent >= 12:  # a description's next line
            entries[last] += " " + line.strip()
            continue
        while parents and parents[-1][0] >= indent:
            parents.pop()
        last = "".join(p for _, p in parents) + name
        entries[last] = rest.strip()
        if name.endswith("/") and not rest.strip():
            parents.append((indent, name))
    return block[0].split(), entries


def py_names(description: str) -> set[str]:
    return set(re.findall(r"(?<![\w/.])(\w+\.py)\b", description))


def test_code_map_is_the_code():
    top, entries = code_map()
    problems = [f"{name} does not exist" for name in top if not (ROOT / name).exists()]
    for path, description in entries.items():
        if not (ROOT / path).exists():
            problems.append(f"{path} does not exist")
        elif path.endswith("/") and path.startswith(("src/segpipe/", "stages/")):
            problems += [f"{path}{name} does not exist" for name in sorted(py_names(description))
                         if not (ROOT / path / name).is_file()]
    for package in sorted(p for p in SRC.iterdir() if (p / "__init__.py").is_file()):
        path = f"src/segpipe/{package.name}/"
        if path not in entries:
            problems.append(f"no line for {path}")
            continue
        unnamed = {p.name for p in package.glob("*.py")} - {"__init__.py"} - py_names(entries[path])
        problems += [f"{path} does not name {name}" for name in sorted(unnamed)]
    problems += [f"no line for src/segpipe/{p.name}" for p in sorted(SRC.glob("*.py"))
                 if p.name != "__init__.py" and f"src/segpipe/{p.name}" not in entries]
    unnamed = {p.name for p in (ROOT / "stages").glob("*.py")} - py_names(entries.get("stages/", ""))
    problems += [f"stages/ does not name {name}" for name in sorted(unnamed)]
    assert not problems, "pipeline.md's code map:\n" + "\n".join(problems)


PATH = re.compile(r"(?<![\w./<-])((?:src/segpipe|stages|tests|bench|\.ci)/[^\s`'\"(),;:|\]]*)")
DOTTED = re.compile(r"(?<![\w./-])(segpipe(?:\.[A-Za-z_]\w*)+)")
# what competition.md's worked example creates
EXAMPLE_FILES = {"src/segpipe/datasets/adapters/cells.py"}
EXAMPLE_MODULES = {"segpipe.datasets.adapters.cells"}


def defines(module: Path, name: str) -> bool:
    """Whether `module` defines or imports `name` (a def, a class, an assignment, an import)."""
    return bool(re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{name}\b|^{name}\s*[:=]|^\s+{name},?\s*$|"
                          rf"\bimport\b.*\b{name}\b", text_of(module), re.M))


def resolve(dotted: str) -> str | None:
    """Why `segpipe.a.b.name` names nothing, or None when it names a module or a name a module defines."""
    parts = dotted.split(".")[1:]
    folder = SRC
    for i, part in enumerate(parts):
        if (folder / part).is_dir():
            folder = folder / part
            continue
        if (folder / f"{part}.py").is_file():
            rest = parts[i + 1:]
            if rest and not defines(folder / f"{part}.py", rest[0]):
                return f"{folder.relative_to(ROOT)}/{part}.py defines no {rest[0]}"
            return None
        init = folder / "__init__.py"
        if init.is_file() and defines(init, part):
            return None
        return f"no module or name {part} in {folder.relative_to(ROOT)}"
    return None


def test_paths_and_modules_named_in_the_docs_exist():
    problems, checked = [], 0
    for page in PAGES:
        for number, line in enumerate(text_of(page).splitlines(), 1):
            for path in PATH.findall(line):
                path = path.rstrip(".")
                if re.search(r"[<>*{}]", path) or path.endswith("/") or path in EXAMPLE_FILES:
                    continue  # placeholders, globs, bare folders
                if not (ROOT / path).exists():
                    problems.append(f"{page.name}:{number}: {path} does not exist")
                checked += 1
            for dotted in DOTTED.findall(line):
                if dotted in EXAMPLE_MODULES:
                    continue
                problem = resolve(dotted.rstrip("."))
                if problem:
                    problems.append(f"{page.name}:{number}: {dotted}: {problem}")
                checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 80


# --- sizes -------------------------------------------------------------------------------

UNITS = {"bytes": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9}
SIZE = re.compile(r"`([\w./-]+)`: (\d[\d,]*(?:\.\d+)?) (bytes|KB|MB|GB)\b")


@cache
def locked_sizes() -> dict[str, int]:
    lock = yaml.safe_load(text_of(ROOT / "dvc.lock"))
    return {out["path"]: out["size"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def test_sizes_of_outputs_are_dvc_lock_sizes():
    problems, checked = [], 0
    for page in PAGES:
        for number, line in prose_lines(page):
            for path, figure, unit in SIZE.findall(line):
                if path not in locked_sizes():
                    continue
                decimals = len(figure.split(".")[1]) if "." in figure else 0
                actual = locked_sizes()[path] / UNITS[unit]
                if round(actual, decimals) != pytest.approx(float(figure.replace(",", ""))):
                    problems.append(f"{page.name}:{number}: {path}: {figure} {unit}, dvc.lock: {actual:,.{decimals}f}")
                checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 2


# --- metrics -----------------------------------------------------------------------------

METRICS_TABLE = re.compile(r"^metric \(`([\w./-]+\.json)`\)$")


def dig(tree, key: str):
    """`a.b` in nested dicts, where a key may itself hold a dot (`dice_at_0.5`)."""
    if key in tree:
        return tree[key]
    for i, char in enumerate(key):
        if char == "." and key[:i] in tree and isinstance(tree[key[:i]], dict):
            return dig(tree[key[:i]], key[i + 1:])
    raise KeyError(key)


def test_metrics_tables_are_the_committed_metrics():
    """A table headed `metric (`metrics/cv.json`) | value` quotes that file, to the digits it shows."""
    import json

    problems, checked = [], 0
    for page in PAGES:
        for header, body in tables(page):
            match = METRICS_TABLE.match(header[0])
            if not match:
                continue
            metrics = json.loads(text_of(ROOT / match.group(1)))
            for number, row in body:
                keys, values = SPAN.findall(row[0]), [v.strip() for v in row[1].replace("*", "").split(" / ")]
                if len(keys) != len(values):
                    problems.append(f"{page.name}:{number}: {len(keys)} keys, {len(values)} values")
                    continue
                for key, value in zip(keys, values):
                    try:
                        actual = dig(metrics, key)
                    except KeyError:
                        problems.append(f"{page.name}:{number}: {match.group(1)} has no {key}")
                        continue
                    decimals = len(value.split(".")[1]) if "." in value else 0
                    if round(float(actual), decimals) != pytest.approx(float(value)):
                        problems.append(f"{page.name}:{number}: {key} is {value}, {match.group(1)} has {actual}")
                    checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 5


# --- links from the code -----------------------------------------------------------------

DOCS_LINK = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")


def test_docs_links_in_the_code_resolve():
    """Messages and comments point users at pages; a renamed page or heading breaks them."""
    from test_docs import anchors

    files = [*ROOT.glob("src/segpipe/**/*.py"), *ROOT.glob("stages/*.py"), *ROOT.glob("bench/*.py"),
             *(p for p in ROOT.glob("tests/**/*.py") if not p.name.startswith("test_docs")),
             *(ROOT / name for name in ("Makefile", "dvc.yaml", "params.yaml", "pyproject.toml"))]
    problems, checked = [], 0
    for path in files:
        for number, line in enumerate(text_of(path).splitlines(), 1):
            for page, anchor in DOCS_LINK.findall(line):
                where = f"{path.relative_to(ROOT)}:{number}: docs/{page}"
                if not (DOCS / page).is_file():
                    problems.append(f"{where}: no such page")
                elif anchor and anchor not in anchors(DOCS / page):
                    problems.append(f"{where}#{anchor}: no such heading")
                checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 20
