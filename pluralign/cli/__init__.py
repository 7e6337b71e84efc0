"""The ``pluralign`` command: typed functions, one per subcommand (``data``, ``runs``, ``benchmarks``), behind a thin
argparse layer here.

Every error a user can cause ends in one line on stderr naming what is wrong and where, and a
non-zero exit; outputs are written atomically, so a failed command leaves no half-written file.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import warnings
from typing import Sequence

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")  # offline by default: nothing downloads at run time
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger("pluralign")

from pluralign.cli.benchmarks import bench, demo  # noqa: E402  (after the offline defaults above)
from pluralign.cli.data import data_build, data_convert, data_list, data_split  # noqa: E402
from pluralign.cli.runs import adapt, compare, evaluate, fit, predict, rank, users  # noqa: E402

RUN_HELP = "a run folder written by pluralign fit"
ACTIVE_HELP = ("chosen questions: an unseen user's k context pairs are the k the model asks first, one at a time "
               "by expected information gain, not the first k in the file (bt keeps the file's order)")
DESCRIPTION = "Pluralistic alignment: reward models with a latent vector per user, few-shot adaptation to new users."
WORKFLOW = """a run, end to end:
  pluralign data build pets --out data/my-pets        (or: data convert ADAPTER FILE, then data split)
  pluralign fit vpl --data data/my-pets --out runs/vpl
  pluralign eval --run runs/vpl --data data/my-pets --out runs/vpl/eval.json
  pluralign rank --run runs/vpl --candidates cands.jsonl --pairs my_pairs.jsonl --out best.jsonl  (best-of-N for a user)
  pluralign bench --benchmarks pets cyclic --out bench  (every method, a table and few-shot curves)
COMMAND --help says more of each."""


# --debug after the subcommand too; SUPPRESS: a subcommand that does not see it leaves the top level's value
DEBUG = argparse.ArgumentParser(add_help=False)
DEBUG.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Each option's help ends with its default where it has one and the help does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and not isinstance(action.default, bool)
                and action.default not in (None, [], argparse.SUPPRESS)
                and "default" not in text and not isinstance(action, argparse._VersionAction)):
            value = ",".join(map(str, action.default)) if isinstance(action.default, list) else "%(default)s"
            text += f" (default: {value})"
        return text


def _command(commands, name: str, function) -> argparse.ArgumentParser:
    """A subcommand whose help is FUNCTION's docstring: its first sentence in the list, all of it under
    ``--help`` (argparse reads help text as %-format, so a literal % is doubled)."""
    doc = " ".join((function.__doc__ or "").split())
    return commands.add_parser(name, help=doc.split(". ")[0].rstrip(".").replace("%", "%%"), description=doc,
                               parents=[DEBUG], formatter_class=_Help)


class _Version(argparse.Action):
    """``--version``: the version, and the git commit where pluralign runs from a checkout (``+dirty`` with
    changes); asked for only when printed, since it runs git."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from pluralign import __version__
        from pluralign.provenance import git_commit

        commit = git_commit()
        dirty = "+dirty" if commit and commit.endswith("+dirty") else ""
        print(f"pluralign {__version__}" + (f" ({commit[:12]}{dirty})" if commit else ""))
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, as every other error here (its own print the usage block first);
    subcommands get the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pluralign", description=DESCRIPTION, epilog=WORKFLOW,
                     formatter_class=_Help)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action=_Version, help="print the version (and git commit) and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="benchmarks and dataset adapters", description="Benchmarks and "
                               "dataset adapters: list them, build a benchmark, convert a dataset, split it by user",
                               parents=[DEBUG], formatter_class=_Help)
    data = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    _command(data, "list", data_list)
    p = _command(data, "build", data_build)
    p.add_argument("name", help="a synthetic benchmark (pluralign data list)")
    p.add_argument("--out", required=True, help="folder for train.jsonl, test.jsonl and README.md")
    p.add_argument("--seed", type=int, default=0, help="the random seed")
    p.add_argument("--context", choices=["random", "survey"], default="random",
                   help="unseen users' context pairs: like any pair, or controversial only (VPL's survey protocol)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword of the benchmark's builder, e.g. --set n_users=64 (all: pluralign data list)")
    p = _command(data, "convert", data_convert)
    p.add_argument("adapter", help="prism, tldr, psoups, ultrafeedback, personalllm or pickapic")
    p.add_argument("source", help="the dataset as downloaded: a file or its folder, or a folder saved by datasets "
                                  "(all but prism, which reads its own conversations.jsonl and survey.jsonl)")
    p.add_argument("--out", required=True, help="a JSONL file of contract rows (and beside it, OUT's stem + "
                   ".meta.json: the adapter's options, what it dropped, PersonalLLM's simulated users)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the adapter, e.g. --set group_by=location.reside_region for prism "
                        "(all: pluralign data list)")
    p = _command(data, "split", data_split)
    p.add_argument("source", help="a file of contract rows with user ids (what data convert writes)")
    p.add_argument("--out", required=True, help="folder for train.jsonl, test.jsonl and README.md")
    p.add_argument("--unseen-users", dest="unseen_users", type=int,
                   help="users held out whole, for few-shot evaluation (default: a tenth of those with enough pairs)")
    p.add_argument("--context", type=int, default=16, help="each unseen user's context pairs (adapt on the first k)")
    p.add_argument("--test-fraction", dest="test_fraction", type=float, default=0.2,
                   help="each seen user's pairs held out for the test split")
    p.add_argument("--seed", type=int, default=0, help="the random seed")
    p.add_argument("--stratify", action="store_true",
                   help="draw the unseen users group by group (the group column), so every group has some")
    p.add_argument("--hold-out-prompts", dest="hold_out_prompts", action="store_true",
                   help="hold out --test-fraction of the prompts too: every pair on them is test (seen users' "
                        "held-out rows, unseen users' queries), unseen users' context pairs are on the others")

    p = _command(commands, "fit", fit)
    p.add_argument("method", help="bt, pal-a, pal-b, vpl, micro, gpm or maxmin")
    p.add_argument("--data", required=True, help="a JSONL/CSV/Parquet file, or a folder with train.jsonl")
    p.add_argument("--out", required=True, help="the run's folder: config, weights, fit statistics (marked "
                   ".pluralign-fit; a folder with another tool's model, checkpoints or logs is refused)")
    p.add_argument("--config", help="YAML file of constructor arguments (default: the shipped preset of METHOD, "
                   "models/METHOD.yaml in a checkout)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one constructor argument, e.g. --set epochs=5")
    p.add_argument("--accelerator", default="cpu", help="Lightning accelerator: cpu, gpu, auto, ...")
    p.add_argument("--devices", default="1", help="how many devices (or which), as Lightning takes it")
    p.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, fsdp, ...")
    p.add_argument("--precision", default="32-true", help="Lightning precision, e.g. bf16-mixed")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core; 1 is fastest "
                   "for small heads when jobs share cores)")

    p = _command(commands, "predict", predict)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--data", required=True, help="rows to score: a file, or a folder's test split")
    p.add_argument("--out", required=True, help="JSONL, one probability per scored row: index (the row's place "
                   "among DATA's rows, from 0; not its file line, as blank lines and a CSV header are no rows), "
                   "user_id, p_chosen")
    p.add_argument("--shots", type=int, default=8, help="context pairs an unseen user is adapted on")
    p.add_argument("--active", action="store_true", help=ACTIVE_HELP)

    p = _command(commands, "eval", evaluate)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--data", required=True, help="a file, or a folder's test split")
    p.add_argument("--out", required=True, help="metrics JSON")
    p.add_argument("--shots", nargs="+", default="0,1,2,4,8,16",
                   help="the few-shot k to score unseen users at: 0 4 8, or 0,4,8 (default: 0,1,2,4,8,16)")
    p.add_argument("--plot", help="also draw the few-shot curve to this PNG")
    p.add_argument("--active", action="store_true", help=ACTIVE_HELP)

    p = _command(commands, "adapt", adapt)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--pairs", help="the new user's labelled pairs (prompt, chosen, rejected); with --active it may be "
                   "left out: a user who has answered nothing yet")
    p.add_argument("--out", required=True, help="JSON: the user's vector (mean, and variance where the method has one)")
    p.add_argument("--active", metavar="POOL", help="file of unlabelled candidate pairs to choose --queries of, "
                   "those whose answers together would tell most (every method but bt); a pair's two responses go "
                   "under 'chosen' and 'rejected', in either order, and no pair is chosen twice")
    p.add_argument("--queries", type=int, help="how many pairs to pick from POOL (default 4; with --active)")

    p = _command(commands, "rank", rank)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--candidates", required=True,
                   help="JSONL, JSON or Parquet: a record per prompt with 'prompt', 'responses' [, 'user_id']")
    p.add_argument("--out", required=True, help="JSONL: each record with the best response, its index and every reward")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", help="a user the run was trained on")
    who.add_argument("--pairs", help="a new user's labelled pairs: their vector is inferred first")
    p.add_argument("--egalitarian", action="store_true",
                   help="MaxMin only: rank by the worst-off group's reward instead of one user's")

    p = _command(commands, "compare", compare)
    p.add_argument("--runs", nargs="+", required=True, metavar="RUN", help="two saved runs: A and B")
    p.add_argument("--data", required=True, help="a file, or a folder's test split")
    p.add_argument("--shots", type=int, default=8, help="context pairs an unseen user is adapted on")
    p.add_argument("--out", required=True, help="JSON: accuracies, the difference and its interval")
    p.add_argument("--active", action="store_true", help=ACTIVE_HELP)

    p = _command(commands, "bench", bench)
    p.add_argument("--methods", nargs="+", help="default: every method")
    p.add_argument("--benchmarks", nargs="+",
                   help="synthetic benchmarks (default: all), or folders of train and test files (pluralign data split)")
    p.add_argument("--out", required=True, help="folder for results.md, results.json, hits.json, few_shot.png, "
                   "gaps.png (where the data has an oracle) and run.json (what made them); an earlier bench's "
                   "outputs there are cleared, anyone else's stop it")
    p.add_argument("--seeds", "--seed", dest="seeds", type=int, nargs="+", default=[0],
                   help="one seed, or several for mean ± sd (each seeds the benchmark and the models)")
    p.add_argument("--context", choices=["random", "survey"], default="random",
                   help="unseen users' context pairs: like any pair, or controversial only (VPL's survey protocol)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="[METHOD.]KEY=VALUE",
                   help="override a preset argument of one method (pal-a.k=4) or of every method (epochs=5)")
    p.add_argument("--jobs", type=int, default=1,
                   help="fit this many (seed, benchmark, method) cells at once, one process and one thread each")
    p.add_argument("--data-set", dest="data_options", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword of every benchmark's builder, e.g. n_unseen_users=48 (all: pluralign data list)")
    p.add_argument("--save-runs", dest="save_runs", action="store_true",
                   help="save each fitted model to OUT/runs/BENCHMARK/METHOD, for pluralign compare")
    p.add_argument("--resume", action="store_true",
                   help="keep the cells an interrupted bench in OUT finished (same options) and fit the rest")
    p.add_argument("--active", action="store_true", help=ACTIVE_HELP)

    p = _command(commands, "users", users)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--data", required=True, help="rows with user ids (a file, or a folder's test split)")
    p.add_argument("--out", required=True, help="the map, a PNG")
    p.add_argument("--shots", type=int, default=8, help="context pairs an unseen user's vector is inferred from")
    p = _command(commands, "demo", demo)
    p.add_argument("--out", default="demo", help="folder for the table and the plot")
    p.add_argument("--methods", nargs="+", help="default: every method")
    return parser


COMMANDS = {"data_list": data_list, "data_build": data_build, "data_convert": data_convert, "data_split": data_split,
            "fit": fit, "predict": predict, "eval": evaluate, "compare": compare, "users": users, "adapt": adapt,
            "rank": rank, "bench": bench, "demo": demo}


def _joined_dash_values(argv: Sequence[str]) -> list[str]:
    """``--shots -1,2`` as ``--shots=-1,2``: argparse reads a dash-led value that is no plain number as an
    option ("expected one argument"); joined to its option, the command's own check names what is wrong."""
    joined: list[str] = []
    for token in argv:
        if (joined and joined[-1].startswith("--") and "=" not in joined[-1] and re.fullmatch(r"-\d[\d.,-]*", token)
                and not re.fullmatch(r"-\d+(\.\d*)?", token)):  # a plain negative number argparse takes itself
            joined[-1] += f"={token}"
        else:
            joined.append(token)
    return joined


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # a library's warning as one line: not its site-packages path and the source line that raised it (shown, not
    # formatted, here: Lightning replaces warnings.formatwarning when it is imported)
    print(f"{category.__name__}: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(_joined_dash_values(sys.argv[1:] if argv is None else argv)))
    debug = args.pop("debug")
    command = args.pop("command")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("lightning").propagate = False  # it has its own console handler: each line once
    if command == "data":
        command = f"data_{args.pop('data_command')}"
    handler = COMMANDS[command]
    try:
        with warnings.catch_warnings():  # the caller's warning display comes back after the command
            if not debug:  # --debug keeps Python's form, with where each warning came from
                warnings.showwarning = _one_line_warning
            handler(**args)
    except KeyboardInterrupt as err:  # Ctrl-C: one line, as for an error, and the shell's code for SIGINT
        if debug:
            raise
        print("pluralign: interrupted" + (f": {err.args[0]}" if err.args else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 1
    except (ValueError, KeyError, TypeError, OSError, RuntimeError) as err:
        if debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        if isinstance(err, OSError) and err.strerror and err.filename:  # not "[Errno 13] ...": the path first
            message = f"{err.filename}: {err.strerror}"
        print(f"pluralign: error: {message}", file=sys.stderr)
        return 2
    return 0
