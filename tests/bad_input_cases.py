"""The bad-input cases: input a new user might give each command, and the one line it answers.

One source: tests/test_cli.py reads `RUN_OPTIONS` and `ORACLE_FILES`;
tests/test_bad_input_table.py runs every case and checks that the command prints exactly its
`shown` line; tools/bad_input_table.py renders docs/bad-input.md from `ENTRIES` and `CASES`.

A case runs as `ENTRIES[entry].base` + `args` (a later option wins) in an empty folder holding a
fresh MLflow store `mlflow.db` and what its `setup` makes (the note says what; an upper-case
argument such as CELL_RUN is a run id the setup creates). In `shown`, `…` stands for a part that
differs from run to run. Below, each message is written once, its key part between « and ».
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import partial

from bench.cli import DEVICES
from bench.store.tracker import SCHEMES
from methods import METHODS
from methods.base import PRESET_NAMES


@dataclass(frozen=True)
class Entry:
    """A command, the options every case of it runs with, and what a refusal leaves behind."""

    command: str  # as a user types it
    prefix: str  # the start of its error lines
    base: str  # the shell words before each case's own arguments
    writes_nothing: bool  # no file is created or removed in the working folder
    promise: str  # the docs' sentences on this command's refusals, checked by the tests


@dataclass(frozen=True)
class Case:
    """One bad input and the line the command answers it with."""

    entry: str  # a key of ENTRIES
    args: tuple[str, ...]
    exit: int  # the exit code
    key: str  # the message's key part: the line must contain it (the older tests' check)
    shown: str  # the whole line the table shows, `…` for a part that varies
    note: str = ""  # shown after the input: what a file or placeholder is
    setup: str = ""  # the recipe that prepares the folder (tests/test_bad_input_table.py)
    leaves: tuple[str, ...] = ()  # files a refusal is known to leave in the folder


ENTRIES = {
    "bench.run": Entry(
        "python -m bench.run",
        "bench.run: error: ",
        "--preset smoke --tracking-uri sqlite:///mlflow.db --cache-dir cache --reports-dir reports",
        True,
        "Checked in this order, before anything is written: the options, the oracle file, the "
        "tracking URI (its scheme; a server must answer), the reports and cache folders (whose "
        "probes remove what they created); then the store is opened. A refused run leaves "
        "nothing in the folder but what its row says.",
    ),
    "bench.report": Entry(
        "python -m bench.report",
        "bench.report: error: ",
        "--tracking-uri sqlite:///mlflow.db --reports-dir reports",
        True,
        "A refusal writes nothing but what its row says: no store, no report folder.",
    ),
    "bench.rescore": Entry(
        "python -m bench.rescore",
        "bench.rescore: error: ",
        "--tracking-uri sqlite:///mlflow.db --reports-dir reports --cache-dir cache",
        False,
        "A kept generator is rebuilt before its rescored run starts; the rescoring's parent "
        "run, already started, ends FAILED, and the task's data may be left in the cache folder.",
    ),
    "bench.sample": Entry(
        "python -m bench.sample",
        "python -m bench.sample: error: ",
        "--tracking-uri sqlite:///mlflow.db",
        True,
        "Its options are checked before the store is read; nothing is written.",
    ),
    "tools/store_archive.py": Entry(
        "python tools/store_archive.py",
        "error: ",
        "",
        True,
        "Every archive file is checked before the first run is created: nothing is imported.",
    ),
}
PARSE = "python -m bench.run: error: "  # bench.run's argparse refusals, one line too
CHOICE = "argument --{0}: «invalid choice: '{1}'» (choose from"


def _case(entry: str, args: str, message: str, prefix: str = "", key: str = "", **more) -> Case:
    """`args` split as a shell would; `message`: the line after the entry's prefix, the key
    part between « and » (no marks: all of it), unless `key` is given."""
    if not key:
        key = message.partition("«")[2].partition("»")[0] if "«" in message else message
    shown = (prefix or ENTRIES[entry].prefix) + message.replace("«", "").replace("»", "")
    return Case(entry, tuple(shlex.split(args)), 2, key, shown, **more)


_run = partial(_case, "bench.run")  # a bench.run case: _run(args, message, ...)
CHOICES = ", ".join(["all", *METHODS])  # what --methods accepts
NAME = "is not a valid experiment name"
DIRECTORY = ": it names a directory"
RULE = (
    ", so 1-100 characters, no '/', '\\' or NUL, not '.' or '..', no leading '-' or "
    "surrounding spaces"
)
SWEEP = "must be a non-empty comma list of numbers > 0"
WIDTHS = "is not valid: widths must be <= T = 20"
N = "9" * 20  # a seed past 2**64

RUN_OPTIONS = (
    _run(
        "--methods gan",
        f"unknown method 'gan' in --methods; choose from {CHOICES}",
        key="unknown method 'gan' in --methods; choose from all, pretrained, mle, mle-es",
    ),
    _run("--methods ''", f"«--methods is empty»; choose from {CHOICES}"),
    _run("--methods mle,mle", "«method 'mle' is listed twice» in --methods"),
    _run("--mle.batch-size 0", "--mle.batch-size=0 is not valid: must be > 0"),
    _run("--mle.batch-size -3", "--mle.batch-size=-3 is not valid: must be > 0"),
    _run("--mle.batch-size 2.5", "--mle.batch-size='2.5' is not valid: expected int"),
    _run("--mle.lr -0.1", "--mle.lr=-0.1 is not valid: must be > 0"),
    _run("--mle.lr fast", "--mle.lr='fast' is not valid: expected float"),
    _run("--mle.lr inf", "--mle.lr=inf is not valid: must be a finite number"),
    _run("--pretrain.lr nan", "--pretrain.lr=nan is not valid: must be a finite number"),
    _run("--pretrain.epochs 0", "--pretrain.epochs=0 is not valid: must be > 0"),
    _run("--bench.n-train 0", "--bench.n-train=0 is not valid: must be > 0"),
    _run("--seqgan.rollout-num 0", "--seqgan.rollout-num=0 is not valid: must be > 0"),
    _run("--seqgan.rollout-num 1.5", "--seqgan.rollout-num='1.5' is not valid: expected int"),
    _run("--gumbel.beta-max -1", "«--gumbel.beta-max=-1.0 is not valid»: must be >= 1"),
    _run(
        "--seqgan-const.constant-reward 0",
        "«--seqgan-const.constant-reward=0.0 is not valid»: must be > 0",
    ),
    _run("--bench.cell-timeout -1", "--bench.cell-timeout=-1.0 is not valid: must be >= 0"),
    _run(
        "--wgan-gp.feedback hard",
        "«--wgan-gp.feedback='hard' is not valid; choose from» soft, sampled-first, gumbel-soft",
    ),
    _run(
        "--bench.sweep-alphas 0",
        "«--bench.sweep-alphas='0' is not valid: must be a non-empty» comma list of numbers > 0",
    ),
    _run("--bench.sweep-alphas 1,-2", f"«--bench.sweep-alphas='1,-2' is not valid»: {SWEEP}"),
    _run("--bench.sweep-alphas ''", f"«--bench.sweep-alphas='' is not valid»: {SWEEP}"),
    _run(
        "--seqgan.discriminator-filter-sizes 2,x",
        "«--seqgan.discriminator-filter-sizes='2,x' is not valid: must be a» non-empty comma "
        "list of integers > 0",
    ),
    _run(
        "--seqgan.discriminator-num-filters 8,8,8",
        "«discriminator-filter-sizes '2,3' has 2 widths but discriminator-num-filters» '8,8,8' "
        "has 3 counts; give one per width",
        note="smoke's D has 2 widths",
    ),
    _run(
        "--seqgan.discriminator-filter-sizes 50,60 --seqgan.discriminator-num-filters 8,8",
        f"--seqgan.discriminator-filter-sizes='50,60' {WIDTHS}",
    ),
    _run("--wgan-gp.critic-filter-sizes 3,21", f"--wgan-gp.critic-filter-sizes='3,21' {WIDTHS}"),
    _run("--gumbel.critic-filter-sizes 40", f"--gumbel.critic-filter-sizes='40' {WIDTHS}"),
    _run(
        "--seqgan.rollout-num 100000000",
        "«rollout-num=100000000 exceeds rollout-chunk=1024»: the N completions of a prefix are "
        "sampled together, so N may not exceed the chunk that bounds the rollout's memory",
    ),
    _run(
        "--seqgan.rollout-chunk 100000000",
        "«rollout-chunk=100000000 exceeds 65536»: the rollout holds a (chunk, V) float32 table, "
        "1.3 GB at the paper's V = 5000",
    ),
    _run(
        "--methods mle --seqgan.rollout-num 8",
        "--seqgan.rollout-num applies to method 'seqgan', which is not in --methods",
    ),
    _run(
        "--methods seqgan --mle.lr 1e-3",
        "--mle.lr applies to method 'mle', which is not in --methods",
    ),
    _run(
        "--bench.n-train 1",
        "«--pretrain.batch-size=64 exceeds --bench.n-train=1: a minibatch must fit» in the "
        "training set",
    ),
    _run(
        "--pretrain.batch-size 100000",
        "«--pretrain.batch-size=100000 exceeds --bench.n-train=1000: a minibatch must fit» in "
        "the training set",
    ),
    _run(
        "--mle.batch-size 100000",
        "«--mle.batch-size=100000 exceeds --bench.n-train=1000: a minibatch must fit» in the "
        "training set",
    ),
    _run(
        "--bench.n-test 99999999999",
        "«--bench.n-test 99999999999: at most 10,000,000» sequences (1.6 GB of tokens at T = 20)",
    ),
    _run(
        "--bench.cell-timeout 1e300",
        "«--bench.cell-timeout 1e+300: at most 1e+07 s» (116 days); 0 = no limit",
    ),
    _run(f"--oracle-seed {N}", f"«--oracle-seed {N}: a seed» must be in [0, 2**32)"),
    _run(f"--bench.eval-seed {N}", f"«--bench.eval-seed {N}»: a seed must be in [0, 2**32)"),
    _run(f"--seeds 0,{N}", f"«--seeds {N}: a seed must be in» [0, 2**32)"),
    _run("--seeds 99999999999", "--seeds 99999999999: a count of seeds must be in 1..10000"),
    _run("--seeds x", "--seeds 'x' is not an integer"),
    _run("--seeds 0", "--seeds 0: «a count of seeds must be in 1..10000»"),
    _run("--seeds 1 1", "--seeds 1,1: «seeds must be distinct» and >= 0"),
    _run("--jobs 0", "--jobs 0: must be >= 1"),
    _run("--jobs 2 --executor ray", "«--jobs 2 applies to --executor local»; Ray sizes itself"),
    _run("--experiment ..", f"«--experiment '..' {NAME}»{DIRECTORY}{RULE}"),
    _run("--experiment a/b", f"«--experiment 'a/b' {NAME}»{DIRECTORY}{RULE}"),
    _run("--experiment /abs", f"«--experiment '/abs' {NAME}»{DIRECTORY}{RULE}"),
    _run("--experiment ''", f"«--experiment '' {NAME}»{DIRECTORY}{RULE}"),
    _run(
        f"--experiment {'x' * 101}",
        f"--experiment {'x' * 100!r} «{NAME}{DIRECTORY}»{RULE}",
        note="101 characters; the message quotes the first 100",
    ),
    _run(
        "--cache-dir /proc/nope",
        "«cache directory '/proc/nope' is not writable» (No such file or directory); pass "
        "--cache-dir",
    ),
    _run(
        "--tracking-uri ftp://host/x",
        f"tracking URI 'ftp://host/x' has «unknown scheme 'ftp'»; use one of {', '.join(SCHEMES)}",
    ),
    _run(
        "--tracking-uri http://127.0.0.1:9",
        "tracking server 'http://127.0.0.1:9' «is unreachable» ([Errno 111] Connection refused); "
        "start it or pass --tracking-uri sqlite:///mlflow.db",
        note="no server listens there",
    ),
    _run("--jobs two", "argument --jobs: invalid int value: 'two'", prefix=PARSE),
    *(
        _run(
            f"--{option} {value}",
            f"{CHOICE.format(option, value)} {', '.join(map(repr, valid))})",
            prefix=PARSE,
        )
        for option, value, valid in (("preset", "huge", PRESET_NAMES), ("device", "tpu", DEVICES))
    ),
    _run("--mle.nope 1", "«unrecognized arguments: --mle.nope» 1", prefix=PARSE),
)

# tests/test_cli.py writes these files too (`_bad_oracle_files`); missing.pkl stays missing
ORACLE = "--oracle seqgan-paper --oracle-path"
PICKLE = "is not a valid pickle of 15 numpy arrays"
ORACLE_FILES = (
    _run(
        f"{ORACLE} missing.pkl",
        "«cannot read oracle file» 'missing.pkl': No such file or directory",
        note="no such file",
        setup="oracle files",
    ),
    _run(
        f"{ORACLE} trunc.pkl",
        f"oracle file 'trunc.pkl' «{PICKLE} (UnpicklingError: pickle data was» truncated)",
        note="the paper's file cut at 5,000 bytes",
        setup="oracle files",
    ),
    _run(
        f"{ORACLE} text.pkl",
        f"oracle file 'text.pkl' «{PICKLE}» (UnpicklingError: Memo value not found at index 101)",
        note="a text file",
        setup="oracle files",
    ),
    _run(
        f"{ORACLE} shapes.pkl",
        "oracle file 'shapes.pkl': array bi «has shape (4, 4), expected (4,)» (from E (4, 4) "
        "and Ui (4, 4))",
        note="15 arrays of shape (4, 4)",
        setup="oracle files",
    ),
    _run(
        f"{ORACLE} evil.pkl",
        "oracle file 'evil.pkl': «refusing to unpickle global» posix.system: an oracle file may "
        "only reference numpy arrays (numpy.core.multiarray._reconstruct, numpy.ndarray, "
        "numpy.dtype)",
        note="a pickle that would call os.system",
        setup="oracle files",
    ),
)
RUN_FILES = (
    _run(
        "--reports-dir afile/sub",
        "reports directory 'afile/sub/seqgan-bench' «is not writable» (Not a directory); pass "
        "--reports-dir",
        note="afile: a regular file",
        setup="afile",
    ),
)
NOT_DB = "(sqlite3.DatabaseError) file is not a database"
NOT_A_STORE = tuple(  # a store file that is not a store
    _case(
        entry,
        f"--tracking-uri sqlite:///{db}",
        f"cannot open MLflow store 'sqlite:///{db}': {NOT_DB}",
        key=key,
        note=note,
        setup=db,
    )
    for entry, db, key, note in (
        ("bench.run", "junk.db", "file is not a database", "a file of text"),
        ("bench.run", "cut.db", "cannot open MLflow store", "a SQLite header and 200 zero bytes"),
        ("bench.report", "junk.db", "file is not a database", "a file of text"),
    )
)
REPORT = (
    *(
        _case(
            "bench.report",
            f"--equivalence-margin {value}",
            f"«--equivalence-margin {float(value)}»: must be a positive finite number of nats",
        )
        for value in ("0", "-0.1", "inf", "nan")
    ),
    _case(
        "bench.report",
        "--tracking-uri sqlite:///absent.db",
        "«no MLflow store at» 'absent.db' (from 'sqlite:///absent.db')",
        note="no such file; none is created",
    ),
    _case("bench.report", "--experiment ..", f"«--experiment '..' {NAME}»{DIRECTORY}{RULE}"),
    _case(
        "bench.report",
        f"--experiment e --run-id {'0' * 32}",
        f"«no run '{'0' * 32}' in» 'sqlite:///mlflow.db'",
        note="experiment e holds one cell's run",
        setup="cell run",
    ),
    _case(
        "bench.report",
        "--experiment e --run-id CELL_RUN",
        "run '…' «is not a bench.run invocation of this experiment» (its parent run); omit "
        "--run-id for the latest",
        note="CELL_RUN: the id of a cell's run, not an invocation's",
        setup="cell run",
    ),
)
OTHERS = (
    _case(
        "bench.rescore",
        "--experiment keep --run-id INVOCATION",
        "generator.pt «does not hold a generator its sizes describe» (Error(s) in loading "
        "state_dict for LSTMGenerator:)",
        note="INVOCATION: an invocation whose kept generator.pt lacks a tensor",
        setup="damaged generator",
    ),
    _case(
        "bench.sample",
        f"RUN_ID --seed {N}",
        f"«--seed {N}: a seed» must be in [0, 2**32)",
        note="any run id: the seed is refused first",
    ),
)


def _archive(args: str, message: str, note: str) -> Case:
    args = args.replace(" ", " --tracking-uri sqlite:///mlflow.db --experiment x ", 1)
    return _case("tools/store_archive.py", args, message, note=note, setup="archives")


ARCHIVE = (
    _archive(
        "import cut.json.gz",
        "cut.json.gz: «not an archive file (Compressed file ended» before the end-of-stream "
        "marker was reached)",
        "a run record cut short",
    ),
    _archive(
        "import list.json.gz",
        "list.json.gz: «holds a JSON list, not a run record»",
        "a list of one run record",
    ),
    _archive(
        "import nokey.json.gz",
        "nokey.json.gz: «tag 'cell_key' is missing; nothing imported»",
        "a run record without the tag cell_key",
    ),
    _archive(
        "import text.json.gz",
        "text.json.gz: metric 'm' has a point [0, 'nine', 0], «not [step, value, timestamp]; "
        "nothing imported»",
        "a run record whose metric m has the value 'nine'",
    ),
    _archive("export afile", "File exists: afile", "afile: a regular file; experiment x exists"),
)

CASES = (*RUN_OPTIONS, *ORACLE_FILES, *RUN_FILES, *REPORT, *NOT_A_STORE, *OTHERS, *ARCHIVE)


def shows(shown: str, line: str) -> bool:
    """`line` is `shown`, each `…` standing for some text."""
    return re.fullmatch(".+".join(map(re.escape, shown.split("…"))), line) is not None


@dataclass(frozen=True)
class Fault:
    """A fault of the filesystem under the store, the cache or the reports, made on a real
    tmpfs by tests/test_filesystem_faults.py, and the last line the command answers with (`…`
    stands for a path, a run id, or a cell's placement)."""

    command: str
    fault: str
    exit: int
    shown: str


_READ_ONLY_STORE = (
    "MLflow store 'sqlite:///…/mlflow.db' is read-only ('…/mlflow.db' is on a read-only "
    "filesystem); this command records runs in it: pass a writable --tracking-uri"
)
FAULTS = {
    "run-read-only-store": Fault(
        "python -m bench.run",
        "the store on a read-only filesystem",
        2,
        f"bench.run: error: {_READ_ONLY_STORE}",
    ),
    "run-read-only-folder": Fault(
        "python -m bench.run",
        "a new store's folder on a read-only filesystem",
        2,
        "bench.run: error: MLflow store 'sqlite:///…/new.db' is read-only ('…' is on a "
        "read-only filesystem); this command records runs in it: pass a writable --tracking-uri",
    ),
    "report-read-only-store": Fault(
        "python -m bench.report",
        "the store on a read-only filesystem (the report is written)",
        0,
        "bench.report: note: the report is not put on parent run …: the store is read-only "
        "('…/mlflow.db' is on a read-only filesystem)",
    ),
    "rescore-read-only-store": Fault(
        "python -m bench.rescore",
        "the store on a read-only filesystem",
        2,
        f"bench.rescore: error: {_READ_ONLY_STORE}",
    ),
    "import-read-only-store": Fault(
        "python tools/store_archive.py import",
        "the store on a read-only filesystem",
        2,
        f"error: {_READ_ONLY_STORE}",
    ),
    "run-full-store": Fault(
        "python -m bench.run",
        "the store on a full filesystem",
        2,
        "bench.run: error: MLflow store 'sqlite:///…/mlflow.db' refused a write "
        "((sqlite3.OperationalError) database or disk is full); the cells finished before are "
        "stored there; once it can be written again (space, permissions), the same command "
        "resumes the rest",
    ),
    "report-full-store": Fault(
        "python -m bench.report",
        "the store on a full filesystem (the report is written)",
        2,
        "bench.report: error: cannot put the report on parent run …: "
        "(sqlite3.OperationalError) database or disk is full; the report files are in '…'",
    ),
    "run-full-reports": Fault(
        "python -m bench.run",
        "the reports folder on a full filesystem",
        2,
        "bench.run: error: reports directory '…' is not writable (No space left on device); "
        "pass --reports-dir",
    ),
    "run-full-cache": Fault(
        "python -m bench.run",
        "the cache folder on a full filesystem",
        2,
        "bench.run: error: cache directory '…' is not writable (No space left on device); "
        "pass --cache-dir",
    ),
    "report-full-reports": Fault(
        "python -m bench.report",
        "the reports folder on a full filesystem",
        2,
        "bench.report: error: cannot write the report to '…' (No space left on device); "
        "pass --reports-dir",
    ),
    "run-store-fills": Fault(
        "python -m bench.run",
        "the store's filesystem fills during the run (room for its runs' metrics, not for a "
        "cell's generator.pt); the pre-training and reference rows are kept",
        1,
        "bench.run: 1 of 1 cells have no result: mle seed 0: failed: OSError: [Errno 28] No "
        "space left on device (traceback.txt in its MLflow run) (a rerun resumes or retries "
        "them)",
    ),
    "run-cache-fills": Fault(
        "python -m bench.run",
        "the cache's filesystem fills during the run (room for the task data, not for a "
        "pre-training); the same command with room finishes the cell",
        1,
        "bench.run: 1 of 1 cells have no result: mle seed 0: failed: OSError: [Errno 28] No "
        "space left on device (traceback.txt in its MLflow run) (a rerun resumes or retries "
        "them)",
    ),
}
