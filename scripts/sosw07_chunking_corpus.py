"""Generates the differential chunking corpus with Python sosw 0.7.47 itself (installed by scripts/sosw07.sh).

    .tools/sosw07-venv/bin/python scripts/sosw07_chunking_corpus.py generate --seed N --count C > jobs.jsonl
    PYTHONHASHSEED=S .tools/sosw07-venv/bin/python scripts/sosw07_chunking_corpus.py chunk < jobs.jsonl > out.jsonl
    .tools/sosw07-venv/bin/python scripts/sosw07_chunking_corpus.py keep out0.jsonl out1.jsonl ... > fixture.jsonl

`scripts/sosw07-chunking-corpus.sh` runs both and keeps the fixtures; this file holds none of sosw's code.

`generate` writes random jobs aimed at what a chunker can get wrong: objects whose values are all null at
every level, falsy isolation flags (false, 0, "", null, [], {}), keys in non-alphabetical order, flat lists
mixing strings, integers and floats, and periods with `isolate_days` beside isolation at several levels.

`chunk` runs sosw 0.7.47's `Scheduler` on each job the way its `parse_job_to_file` does (the root check, then
`construct_job_data` with the skeleton `{"labourer_id": "L"}`; chunkable `section`, `store`, `product`;
today 2026-11-25) and prints `{"job": ..., "tasks": [...]}` or `{"job": ..., "error": "..."}` per line,
in sosw's own dict order (Python's `json.dumps` keeps it).
"""

import argparse
import datetime as real_datetime
import json
import random
import sys

TODAY = real_datetime.date(2026, 11, 25)
ATTRS = ["section", "store", "product"]
FALSY = [False, 0, "", None, [], {}]
TRUTHY = [True, 1, "true", "false", "yes", 2]
# Deliberately not alphabetical, and mixed with names that sort before and after the flags.
NAMES = {
    "section": ["zeta", "s2", "alpha", "s10", "m", "b1", "a0"],
    "store": ["store_flowers", "store_caskets", "z9", "t1", "aa", "t0"],
    "product": ["p9", "p1", "zz", "apple", "p10", "b"],
}
EXTRA_KEYS = ["note", "zone", "a_key", "m_key", "labels", "Y", "b"]
PERIODS = ["today", "yesterday", "last_2_days", "last_3_days", "2_days_back", "previous_2_days", "last_week"]


class FixedDate(real_datetime.date):
    @classmethod
    def today(cls):
        return TODAY


class FixedDatetimeModule:
    """What sosw.scheduler reads of `datetime`, with a fixed today."""

    date = FixedDate
    timedelta = real_datetime.timedelta
    datetime = real_datetime.datetime


def scheduler():
    import logging

    logging.disable(logging.CRITICAL)
    import sosw.scheduler as module

    module.datetime = FixedDatetimeModule
    # No AWS: the chunking methods only read `config` and `chunkable_attrs`.
    s = module.Scheduler.__new__(module.Scheduler)
    s.config = {}
    s.chunkable_attrs = list(ATTRS)
    return s, module.plural


def chunk(job, s, plural):
    job = json.loads(json.dumps(job))
    # parse_job_to_file, without the labourer lookup and the file.
    if not all([s.chunkable_attrs, s.needs_chunking(plural(s.chunkable_attrs[0]), job)]):
        return [{"labourer_id": "L", **job}], False
    return s.construct_job_data(job, skeleton={"labourer_id": "L"}), True


def cmd_chunk():
    s, plural = scheduler()
    for line in sys.stdin:
        job = json.loads(line)
        try:
            tasks, chunked = chunk(job, s, plural)
            out = {"job": job, "tasks": tasks, "root_chunked": chunked}
        except Exception as e:  # noqa: BLE001 - every failure is recorded and the job left out
            out = {"job": job, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out))


def flat_value(rng, level):
    kind = rng.random()
    if kind < 0.5:
        return rng.choice(NAMES[ATTRS[level]])
    if kind < 0.75:
        return rng.randint(-3, 40)
    return rng.choice([0.5, 1.25, 3.0, 10.75, -2.5])


def flag(rng):
    return rng.choice(FALSY) if rng.random() < 0.5 else rng.choice(TRUTHY)


def level_flags(rng, level, into):
    """Adds isolation and batch flags for `level` and maybe below it, some falsy."""
    for depth in range(level, len(ATTRS)):
        attr = ATTRS[depth]
        r = rng.random()
        if r < 0.35:
            into[f"isolate_{attr}s"] = flag(rng)
        elif r < 0.45:
            into[f"isolate_{attr}"] = flag(rng)
        elif r < 0.55:
            into[f"max_{attr}s_per_batch"] = rng.choice([1, 2, 3, 5, "2"])


def values(rng, level, depth_left):
    """The value of `<attr>s` at `level`: a flat (mixed) list, an object of nulls, or an object of objects."""
    attr = ATTRS[level]
    r = rng.random()
    last = level == len(ATTRS) - 1
    # Flat lists above the last level crash sosw 0.7 unless the level is isolated (B13); such jobs are left out.
    if r < (0.25 if last else 0.1):
        return [flat_value(rng, level) for _ in range(rng.randint(1, 5))]
    names = rng.sample(NAMES[attr], rng.randint(1, 4))
    if r < 0.5 or depth_left == 0:
        return {n: None for n in names}
    out = {}
    for n in names:
        c = rng.random()
        if c < 0.3:
            out[n] = None
        else:
            out[n] = level_object(rng, level + 1, depth_left - 1) if not last else extras(rng, n)
    return out


def extras(rng, name):
    out = {}
    for k in rng.sample(EXTRA_KEYS, rng.randint(1, 2)):
        out[k] = rng.choice([name, 7, [1, "a"], {"k": "v"}, None, False])
    return out


def level_object(rng, level, depth_left):
    """A sub-object: extra keys, maybe flags, and maybe the next attribute's values, keys shuffled."""
    items = []
    if level < len(ATTRS) and rng.random() < 0.85:
        items.append((f"{ATTRS[level]}s", values(rng, level, depth_left)))
    if rng.random() < 0.5:
        items.extend(extras(rng, "x").items())
    if level < len(ATTRS) and rng.random() < 0.4:
        flags = {}
        level_flags(rng, level, flags)
        items.extend(flags.items())
    rng.shuffle(items)
    return dict(items)


def job(rng):
    items = [("sections", values(rng, 0, 2))]
    flags = {}
    level_flags(rng, 0, flags)
    items.extend(flags.items())
    if rng.random() < 0.5:
        items.append(("period", rng.choice(PERIODS)))
        if rng.random() < 0.7:
            items.append(("isolate_days", flag(rng)))
    if rng.random() < 0.5:
        items.extend(extras(rng, "root").items())
    rng.shuffle(items)
    return dict(items)


# The shapes named in issue 20, first in the corpus: the key order under an isolated section, objects of
# nulls at levels that are not isolated, and falsy flags beside them.
PINNED = [
    {"isolate_sections": True, "sections": {"s1": {"stores": {"store_flowers": None, "store_caskets": None}}}},
    {"isolate_sections": True, "sections": {"zeta": {"stores": {"store_flowers": None, "store_caskets": None}},
                                            "alpha": None}},
    {"sections": {"b": None, "a": None}},
    {"isolate_sections": False, "sections": {"b": None, "a": None}},
    {"zone": 1, "isolate_sections": False, "period": "", "sections": {"b": None, "a": None}},
    {"isolate_sections": True, "sections": {"s1": {"isolate_stores": False, "stores": {"b": None, "a": None}}}},
    {"isolate_stores": True, "sections": {"s2": {"isolate_sections": 0, "stores": {"b": None, "a": None}},
                                          "s1": {"products": {"p2": None, "p1": None}, "stores": {"z": None}}}},
    {"isolate_products": True, "period": "last_2_days", "isolate_days": True,
     "sections": {"s1": {"stores": {"t1": {"products": ["p2", 3, "p1", 1.5]}}}}},
]


def cmd_generate(seed, count):
    for pinned in PINNED:
        print(json.dumps(pinned))
    rng = random.Random(seed)
    for _ in range(count):
        print(json.dumps(job(rng)))


def truthy_period(job):
    return bool(job.get("period"))


def cmd_keep(paths):
    """Keeps the jobs sosw 0.7.47 chunked without an error, identically under every hash seed, outside the
    documented B11 difference (a root needing no chunking leaves a truthy `period` unexpanded in sosw 0.7)."""
    runs = [open(p).read().splitlines() for p in paths]
    kept = dropped = 0
    for lines in zip(*runs):
        if any(line != lines[0] for line in lines):
            dropped += 1
            continue
        row = json.loads(lines[0])
        if "error" in row or (not row["root_chunked"] and truthy_period(row["job"])):
            dropped += 1
            continue
        print(json.dumps({"job": row["job"], "tasks": row["tasks"]}, separators=(",", ":"), ensure_ascii=False))
        kept += 1
    print(f"kept {kept} jobs, left out {dropped}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--seed", type=int, default=47)
    g.add_argument("--count", type=int, default=600)
    sub.add_parser("chunk")
    k = sub.add_parser("keep")
    k.add_argument("outputs", nargs="+")
    args = parser.parse_args()
    if args.cmd == "generate":
        cmd_generate(args.seed, args.count)
    elif args.cmd == "keep":
        cmd_keep(args.outputs)
    else:
        cmd_chunk()


if __name__ == "__main__":
    main()
