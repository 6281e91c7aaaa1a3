"""``deepseek.distributed.checkpoint``: sharded checkpoints of distributed training.

``save(dir, model, optimizer)`` (every rank calls it) writes one safetensors file per rank
(``rank-00000-of-00002.safetensors``, ...) with that rank's parameter shards and optimizer
state shards, then rank 0 writes ``index.json`` (every full tensor: dtype, shape, and which
runs of it each rank file holds); each file is written atomically and the directory counts
as complete only once the index exists. ``load(dir, model, optimizer)`` restores them
bitwise on the same world size, so training resumes exactly; another world size is refused
(consolidate first). ``consolidate(dir, out_path)`` (one process, no MPI; also
``deepseek consolidate DIR OUT``) writes the full tensors under the unsplit model's names:
a state dict that ``load_state_dict`` of the unsplit model (deepseek or PyTorch) takes.

How parameters are split comes from the modules: ``TensorParallel.split`` modules and
``ColumnParallelLinear`` / ``RowParallelLinear`` declare it (``_tp_sharding``: parameter
name -> ``(dim, blocks)``, ``"*"`` for all), every other parameter is replicated. The
optimizer is a deepseek optimizer over this rank's parameters (its state is sharded like
the parameters) or a ``ZeroRedundancyOptimizer`` (each rank's flat slice of the state).

Layout of the consolidated optimizer file (``out.optim.safetensors`` beside ``out``):
``state.<param>.<buffer>`` (``state.fc1.weight.exp_avg``), ``state.<param>.step`` (0-d
float32); its metadata holds ``optimizer`` (the kind) and ``param_groups`` (JSON,
parameters by name). The Rust twin is ``deepseek::distributed::checkpoint``.
"""

import json
import os

from .. import _C

_D = _C.distributed
INDEX_FILE = "index.json"
_OPT = "optimizer."

__all__ = ["save", "load", "consolidate", "sharded_parameters", "rank_file_name"]


def rank_file_name(rank, world_size):
    return f"rank-{rank:05d}-of-{world_size:05d}.safetensors"


def _dtype_name(t):
    return str(t.dtype).split(".")[-1]


def _group_info(group):
    g = group if group is not None else _D.world()
    return g.rank(), g.size(), list(g.ranks)


def sharded_parameters(model):
    """``[(name, tensor, sharding, group)]`` of ``model``'s parameters: ``sharding`` is
    ``None`` (replicated) or ``(dim, blocks)`` (see the module docstring)."""
    out = []
    for mname, m in model.named_modules():
        spec = getattr(type(m), "_tp_sharding", None) or {}
        group = getattr(m, "group", None) if spec else None
        for pname, p in m._parameters.items():
            if p is None:
                continue
            name = f"{mname}.{pname}" if mname else pname
            sh = spec.get(pname, spec.get("*"))
            out.append((name, p, tuple(sh) if sh is not None else None, group))
    return out


def _locate(model):
    """Each parameter's piece (full name, shape, layout) and whether this rank writes it."""
    me = _D.world().rank()
    seen, out = set(), []
    for name, p, sh, group in sharded_parameters(model):
        if name in seen:
            raise ValueError(f"checkpoint: parameter name {name!r} appears twice")
        seen.add(name)
        gr, gn, granks = _group_info(group)
        shape = list(p.shape)
        if sh is None:
            piece = {"layout": "replicated"}
            full, writes = shape, granks[0] == me
        else:
            dim, blocks = sh
            if dim >= len(shape) or shape[dim] % blocks:
                raise ValueError(f"checkpoint: {name!r}: a shard of shape {shape} cannot be "
                                 f"split along dim {dim} into {blocks} blocks")
            part = shape[dim] // blocks
            piece = {"layout": "dim", "dim": dim, "chunks": [
                {"offset": k * part * gn + gr * part, "length": part, "local_offset": k * part}
                for k in range(blocks)]}
            full = list(shape)
            full[dim] = shape[dim] * gn
            writes = True
        piece.update({"key": name, "name": name, "dtype": _dtype_name(p), "shape": full})
        out.append({"name": name, "param": p, "piece": piece, "writes": writes,
                    "replicated": sh is None})
    return out


def _is_zero(optimizer):
    from .optim import ZeroRedundancyOptimizer
    return isinstance(optimizer, ZeroRedundancyOptimizer)


def _split_state(st, shape):
    """Buffers (tensors of the parameter's shape) and the rest (JSON numbers)."""
    bufs, rest = {}, {}
    for k, v in st.items():
        if k != "step" and isinstance(v, _C.Tensor) and list(v.shape) == list(shape):
            bufs[k] = v
        else:
            rest[k] = float(v.item()) if isinstance(v, _C.Tensor) else v
    return bufs, rest


def _hyper(g):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items() if k != "params"}


def _optimizer_pieces(ws, optimizer):
    import deepseek
    by_id = {id(w["param"]): w for w in ws}
    pieces, steps, scalars = [], {}, {}
    if _is_zero(optimizer):
        sd = optimizer.optim.state_dict()
        L = optimizer.shard_numel()
        zr = optimizer.process_group.rank() if optimizer.process_group is not None \
            else _D.world().rank()
        lo, hi = zr * L, zr * L + L
        st = sd["state"].get(0, sd["state"].get("0"))
        bufs, rest = _split_state(st, [L]) if st is not None else ({}, {})
        names, a = [], 0
        for p in optimizer._params:
            w = by_id.get(id(p))
            if w is None:
                raise ValueError(f"checkpoint: a ZeroRedundancyOptimizer parameter of shape "
                                 f"{list(p.shape)} is not a parameter of the model")
            if not w["replicated"]:
                raise ValueError(f"checkpoint: {w['name']!r}: ZeroRedundancyOptimizer state of a "
                                 "tensor-parallel shard cannot be checkpointed")
            names.append(w["name"])
            k = p.numel()
            s, e = max(a, lo), min(a + k, hi)
            if st is not None and s < e:
                steps[w["name"]] = int(rest.get("step", 0))
                sc = {x: v for x, v in rest.items() if x != "step"}
                if sc:
                    scalars[w["name"]] = sc
                for b, v in bufs.items():
                    key = f"{_OPT}{b}.{w['name']}"
                    pieces.append(({"key": key, "name": key, "dtype": "float32",
                                    "shape": list(p.shape), "layout": "flat",
                                    "chunks": [{"offset": s - a, "length": e - s,
                                                "local_offset": 0}]},
                                   v.detach().to(deepseek.float32)[s - lo:e - lo].clone()))
            a += k
        groups = [{"hyper": _hyper(g), "params": names} for g in sd["param_groups"]]
        head = {"kind": sd.get("optimizer", type(optimizer.optim).__name__), "zero": True,
                "shard_len": L, "param_groups": groups, "steps": steps, "scalars": scalars,
                "py": {"param_groups": [_hyper(g) | {"params": g["params"]}
                                        for g in sd["param_groups"]],
                       "rest": rest if st is not None else None, "buffers": sorted(bufs)}}
        return pieces, head
    sd = optimizer.state_dict()
    groups, rests, bufnames, i = [], {}, {}, 0
    for g in optimizer.param_groups:
        names = []
        for p in g["params"]:
            w = by_id.get(id(p))
            if w is None:
                raise ValueError(f"checkpoint: an optimizer parameter of shape {list(p.shape)} is "
                                 "not a parameter of the model")
            names.append(w["name"])
            st = sd["state"].get(i, sd["state"].get(str(i)))
            if st is not None:
                bufs, rest = _split_state(st, p.shape)
                rests[w["name"]], bufnames[w["name"]] = rest, sorted(bufs)
                if "step" in rest:
                    steps[w["name"]] = int(rest["step"])
                sc = {x: v for x, v in rest.items() if x != "step"}
                if sc:
                    scalars[w["name"]] = sc
                if w["writes"]:
                    for b, v in bufs.items():
                        piece = dict(w["piece"])
                        piece["key"] = piece["name"] = f"{_OPT}{b}.{w['name']}"
                        piece["dtype"] = _dtype_name(v)
                        pieces.append((piece, v.detach()))
            i += 1
        groups.append({"hyper": _hyper(g), "params": names})
    head = {"kind": sd.get("optimizer", type(optimizer).__name__), "zero": False,
            "param_groups": groups, "steps": steps, "scalars": scalars,
            "py": {"param_groups": [_hyper(g) | {"params": g["params"]}
                                    for g in sd["param_groups"]],
                   "rest": rests, "buffers": bufnames}}
    return pieces, head


def _exchange(status):
    """Every rank's status string (<= 64 bytes; ``None`` = failed), in rank order."""
    import deepseek
    from . import all_gather, get_world_size
    b = list((status or "").encode()[:64])
    b += [0] * (64 - len(b))
    t = deepseek.tensor(b, dtype=deepseek.uint8)
    out = [deepseek.zeros(64, dtype=deepseek.uint8) for _ in range(get_world_size())]
    all_gather(out, t)
    res = []
    for o in out:
        v = bytes(int(x) for x in o.tolist()).rstrip(b"\0")
        res.append(v.decode() if v else None)
    return res


def _others_failed(op, st):
    bad = [str(r) for r, s in enumerate(st) if s is None]
    if bad:
        raise RuntimeError(f"{op}: rank(s) {', '.join(bad)} failed (see their error); "
                           "nothing was completed")


def save(checkpoint_dir, model, optimizer=None, metadata=None):
    """Writes this rank's shards of ``model`` (and ``optimizer``'s state) into
    ``checkpoint_dir``; every rank calls it. ``metadata`` (JSON-able: step, epoch, ...) is
    stored in the index and returned by ``load``. An error on any rank fails the save on
    every rank and leaves no index."""
    from . import barrier, get_rank, get_world_size
    d = os.fspath(checkpoint_dir)
    me, n = get_rank(), get_world_size()
    pre = None
    try:
        os.makedirs(d, exist_ok=True)
        if me == 0 and os.path.exists(os.path.join(d, INDEX_FILE)):
            os.remove(os.path.join(d, INDEX_FILE))
    except Exception as e:  # reported after the barrier, so no rank is left waiting
        pre = e
    barrier()
    sha, err = None, pre
    if err is None:
        try:
            ws = _locate(model)
            pieces = [(w["piece"], w["param"].detach()) for w in ws if w["writes"]]
            head = None
            if optimizer is not None:
                p, head = _optimizer_pieces(ws, optimizer)
                pieces += p
            sha = _D._ckpt_write_rank(d, me, n, json.dumps([p for p, _ in pieces]),
                                      {p["key"]: t for p, t in pieces},
                                      json.dumps({"optimizer": head}))
        except Exception as e:
            err = e
    st = _exchange(sha)
    if err is not None:
        raise err
    _others_failed("checkpoint.save", st)
    ok, err = "ok", None
    if me == 0:
        try:
            _D._ckpt_write_index(d, n, st, json.dumps(metadata))
        except Exception as e:
            ok, err = None, e
    st = _exchange(ok)
    if err is not None:
        raise err
    _others_failed("checkpoint.save", st)


class _Reader:
    def __init__(self, d, me):
        self.d, self.me = d, me
        self.index = json.loads(_D._ckpt_open(d))
        self.files = {}

    def file(self, r):
        if r not in self.files:
            t, h = _D._ckpt_read_rank(self.d, r)
            self.files[r] = (t, json.loads(h))
        return self.files[r]

    def stored(self, name, want):
        e = self.index["tensors"].get(name)
        if e is None:
            raise OSError(f"{self.d}: the checkpoint has no tensor {name!r}")
        if (e["dtype"], e["shape"], e["layout"], e.get("dim")) != \
                (want["dtype"], want["shape"], want["layout"], want.get("dim")):
            raise ValueError(
                f"checkpoint.load: {name!r}: the checkpoint has {e['dtype']} {e['shape']} "
                f"({e['layout']}), the model {want['dtype']} {want['shape']} ({want['layout']}): "
                "the model or its sharding differs from the one saved")
        if e["layout"] == "replicated":
            r, key = e["chunks"][0]["rank"], e["chunks"][0]["key"]
        else:
            have = [{k: c[k] for k in ("offset", "length", "local_offset")}
                    for c in e["chunks"] if c["rank"] == self.me]
            if have != want["chunks"]:
                raise ValueError(f"checkpoint.load: {name!r}: rank {self.me} saved other parts "
                                 "of it than it holds now")
            r, key = self.me, next(c["key"] for c in e["chunks"] if c["rank"] == self.me)
        t = self.file(r)[0].get(key)
        if t is None:
            raise OSError(f"{self.d}: rank {r}'s file has no tensor {key!r}")
        return t


def _optimizer_state(rd, ws, optimizer, head):
    import deepseek
    if head is None:
        raise ValueError("checkpoint.load: the checkpoint holds no optimizer state")
    py = head.get("py")
    if py is None:
        raise ValueError("checkpoint.load: the optimizer state was saved from Rust; load it "
                         "with deepseek::distributed::checkpoint::load")
    by_id = {id(w["param"]): w for w in ws}
    groups = [dict(g) for g in py["param_groups"]]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    if _is_zero(optimizer):
        if not head.get("zero"):
            raise ValueError("checkpoint.load: the checkpoint holds no "
                             "ZeroRedundancyOptimizer state")
        L = optimizer.shard_numel()
        if head.get("shard_len") != L:
            raise ValueError(f"checkpoint.load: the ZeroRedundancyOptimizer slice has {L} "
                             "elements now, another number when saved")
        if py["rest"] is None:
            return {"state": {}, "param_groups": groups, "optimizer": head["kind"]}
        zr = optimizer.process_group.rank() if optimizer.process_group is not None \
            else _D.world().rank()
        lo = zr * L
        st = {k: (deepseek.tensor(v) if k == "step" else v) for k, v in py["rest"].items()}
        for b in py["buffers"]:
            buf = deepseek.zeros(L, dtype=deepseek.float32)
            a = 0
            for p in optimizer._params:
                k = p.numel()
                s, e = max(a, lo), min(a + k, lo + L)
                if s < e:
                    w = by_id.get(id(p))
                    if w is None:
                        raise ValueError("checkpoint.load: a ZeroRedundancyOptimizer parameter "
                                         "is not a parameter of the model")
                    key = f"{_OPT}{b}.{w['name']}"
                    piece = {"dtype": "float32", "shape": list(p.shape), "layout": "flat",
                             "chunks": [{"offset": s - a, "length": e - s, "local_offset": 0}]}
                    buf[s - lo:e - lo] = rd.stored(key, piece)
                a += k
            st[b] = buf
        return {"state": {0: st}, "param_groups": groups, "optimizer": head["kind"]}
    if head.get("zero"):
        raise ValueError("checkpoint.load: the checkpoint holds ZeroRedundancyOptimizer state; "
                         "pass a ZeroRedundancyOptimizer")
    state, i = {}, 0
    mine = [p for g in optimizer.param_groups for p in g["params"]]
    if len(mine) != sum(len(g["params"]) for g in groups):
        raise ValueError("checkpoint.load: the optimizer has another number of parameters than "
                         "the one saved")
    for p in mine:
        w = by_id.get(id(p))
        if w is None:
            raise ValueError("checkpoint.load: an optimizer parameter is not a parameter of "
                             "the model")
        rest = py["rest"].get(w["name"])
        if rest is not None:
            st = {k: (deepseek.tensor(v) if k == "step" else v) for k, v in rest.items()}
            for b in py["buffers"][w["name"]]:
                key = f"{_OPT}{b}.{w['name']}"
                piece = dict(w["piece"])
                piece["dtype"] = rd.index["tensors"].get(key, {}).get("dtype", "float32")
                st[b] = rd.stored(key, piece)
            state[i] = st
        i += 1
    return {"state": state, "param_groups": groups, "optimizer": head["kind"]}


def load(checkpoint_dir, model, optimizer=None):
    """Restores ``model``'s parameters (and ``optimizer``'s state) from a checkpoint written
    by ``save`` with the same world size, model sharding and optimizer; every rank calls
    it. Returns the ``metadata`` given to ``save``. Nothing changes unless every rank can
    load: an error on one rank fails the load on all of them."""
    import deepseek
    from . import get_rank, get_world_size
    d = os.fspath(checkpoint_dir)
    me, n = get_rank(), get_world_size()
    err = None
    try:
        rd = _Reader(d, me)
        if rd.index["world_size"] != n:
            raise ValueError(
                f"checkpoint.load: {d} was saved by {rd.index['world_size']} ranks and this job "
                f"has {n}: a sharded checkpoint resumes on the same world size only; "
                f"consolidate it first (deepseek.distributed.checkpoint.consolidate, or "
                f"`deepseek consolidate {d} full.safetensors`) and load the full state dict")
        _, header = rd.file(me)
        ws = _locate(model)
        copies = []
        for w in ws:
            t = rd.stored(w["name"], w["piece"])
            if list(t.shape) != list(w["param"].shape):
                raise ValueError(f"checkpoint.load: {w['name']!r}: stored {list(t.shape)}, the "
                                 f"parameter is {list(w['param'].shape)}")
            copies.append((w["param"], t))
        osd = None
        if optimizer is not None:
            osd = _optimizer_state(rd, ws, optimizer, header["state"].get("optimizer"))
    except Exception as e:
        err = e
    st = _exchange("ok" if err is None else None)
    if err is not None:
        raise err
    _others_failed("checkpoint.load", st)
    if osd is not None:
        (optimizer.optim if _is_zero(optimizer) else optimizer).load_state_dict(osd)
    with deepseek.no_grad():
        for p, t in copies:
            p.copy_(t)
        if _is_zero(optimizer):
            # ZeRO updates its own copy of this rank's slice: take the loaded values.
            flat = optimizer._pad(deepseek.cat([q.detach().reshape(-1) for q in optimizer._params]))
            zr = optimizer.process_group.rank() if optimizer.process_group is not None \
                else _D.world().rank()
            L = optimizer.shard_numel()
            optimizer._shard.copy_(flat[zr * L:(zr + 1) * L])
    return rd.index.get("metadata")


def consolidate(checkpoint_dir, out_path, optimizer_out=None):
    """Writes the full tensors of the sharded checkpoint ``checkpoint_dir`` to
    ``out_path`` (a safetensors state dict of the unsplit model; one process, no MPI) and
    its optimizer state, if any, to ``optimizer_out`` (default: ``out_path`` with
    ``.safetensors`` replaced by ``.optim.safetensors``). Returns a dict: ``model_path``,
    ``model_tensors``, ``optimizer_path``, ``optimizer_tensors``, ``world_size``."""
    return _D._ckpt_consolidate(os.fspath(checkpoint_dir), os.fspath(out_path),
                                None if optimizer_out is None else os.fspath(optimizer_out))
