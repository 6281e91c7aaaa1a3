//! The backward engine: topological walk, gradient accumulation, hooks.

use super::{Ctx, Edge, Node};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

type NodeKey = *const Node;

/// Leaves' gradients are gathered here, then run through hooks and accumulated.
struct LeafGrad {
    leaf: Tensor,
    grad: Tensor,
}

fn add_opt(slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        None => g,
        Some(a) => a.add(&g)?,
    });
    Ok(())
}

fn run_hooks(t: &Tensor, g: Tensor) -> Result<Tensor> {
    apply_hooks(t.hooks(), g)
}

fn apply_hooks(hooks: Vec<crate::tensor::Hook>, mut g: Tensor) -> Result<Tensor> {
    for h in hooks {
        if let Some(r) = h(&g)? {
            if r.dtype() != g.dtype() {
                return Err(Error::Autograd(format!(
                    "hook returned a gradient of dtype {}, expected {}",
                    r.dtype(),
                    g.dtype()
                )));
            }
            if r.shape() != g.shape() {
                return Err(Error::Autograd(format!(
                    "hook returned a gradient of shape {:?}, expected {:?}",
                    r.shape(),
                    g.shape()
                )));
            }
            g = r;
        }
    }
    Ok(g)
}

/// Computes gradients of `roots` (with output gradients `grads`; `None` means ones for a
/// scalar) and accumulates them into the `.grad()` of every leaf that requires grad.
pub fn backward(
    roots: &[Tensor],
    grads: &[Option<Tensor>],
    retain_graph: bool,
    create_graph: bool,
) -> Result<()> {
    run(roots, grads, retain_graph, create_graph, None).map(|_| ())
}

/// Returns the gradients of `roots` with respect to `inputs` without touching any `.grad()`
/// (PyTorch's `torch.autograd.grad`). Inputs the roots do not depend on get `None`.
pub fn grad(
    roots: &[Tensor],
    inputs: &[Tensor],
    grads: &[Option<Tensor>],
    retain_graph: bool,
    create_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    for t in inputs {
        if !t.requires_grad() {
            return Err(Error::Autograd(
                "one of the inputs does not require grad".into(),
            ));
        }
        if let Some(e) = t
            .grad_fn()
            .and_then(|(n, _)| n.bypassed_error("take the gradient with respect to"))
        {
            return Err(e);
        }
    }
    run(
        roots,
        grads,
        retain_graph || create_graph,
        create_graph,
        Some(inputs),
    )
    .map(|r| r.unwrap_or_default())
}

fn run(
    roots: &[Tensor],
    grads: &[Option<Tensor>],
    retain_graph: bool,
    create_graph: bool,
    capture: Option<&[Tensor]>,
) -> Result<Option<Vec<Option<Tensor>>>> {
    if roots.len() != grads.len() {
        return Err(Error::Autograd(format!(
            "{} outputs but {} gradients",
            roots.len(),
            grads.len()
        )));
    }
    let _mode = super::grad_mode::GradModeGuard {
        prev: super::set_grad_enabled(create_graph),
    };

    // Seed gradients.
    let mut buffers: HashMap<NodeKey, Vec<Option<Tensor>>> = HashMap::new();
    let mut leaves: HashMap<u64, LeafGrad> = HashMap::new();
    let mut root_nodes: Vec<Arc<Node>> = Vec::new();
    for (r, g) in roots.iter().zip(grads) {
        if !r.requires_grad() {
            return Err(Error::Autograd(
                "element 0 of tensors does not require grad and does not have a grad_fn".into(),
            ));
        }
        let g = match g {
            Some(g) => {
                if g.shape() != r.shape() {
                    return Err(Error::shape(
                        "backward",
                        format!(
                            "gradient of shape {:?} given for an output of shape {:?}",
                            g.shape(),
                            r.shape()
                        ),
                    ));
                }
                g.clone()
            }
            None => {
                if r.numel() != 1 {
                    return Err(Error::Autograd(format!(
                        "grad can be implicitly created only for scalar outputs; the output has shape {:?} \
                         (pass a gradient of that shape)",
                        r.shape()
                    )));
                }
                Tensor::ones_like(r)?
            }
        };
        match r.grad_fn() {
            Some((n, i)) => {
                let b = buffers
                    .entry(Arc::as_ptr(n))
                    .or_insert_with(|| vec![None; n.out_meta.len()]);
                add_opt(&mut b[*i], g)?;
                root_nodes.push(n.clone());
            }
            None => accumulate_leaf(&mut leaves, r, g)?,
        }
    }

    // Dependency counts over the reachable graph.
    let mut deps: HashMap<NodeKey, usize> = HashMap::new();
    let mut seen: HashMap<NodeKey, Arc<Node>> = HashMap::new();
    let mut stack: Vec<Arc<Node>> = Vec::new();
    for n in &root_nodes {
        if seen.insert(Arc::as_ptr(n), n.clone()).is_none() {
            stack.push(n.clone());
        }
    }
    while let Some(n) = stack.pop() {
        for e in n.edges.iter().flatten() {
            if let Edge::Node(c, _) = e {
                let k = Arc::as_ptr(c);
                *deps.entry(k).or_insert(0) += 1;
                if seen.insert(k, c.clone()).is_none() {
                    stack.push(c.clone());
                }
            }
        }
    }

    // Captures for `grad()`: leaves by id, non-leaves by (node, output).
    let mut cap_leaf: HashMap<u64, usize> = HashMap::new();
    let mut cap_node: HashMap<(NodeKey, usize), usize> = HashMap::new();
    let mut captured: Vec<Option<Tensor>> = Vec::new();
    if let Some(inputs) = capture {
        captured = vec![None; inputs.len()];
        for (k, t) in inputs.iter().enumerate() {
            match t.grad_fn() {
                Some((n, i)) => {
                    cap_node.insert((Arc::as_ptr(n), *i), k);
                }
                None => {
                    cap_leaf.insert(t.id(), k);
                }
            }
        }
    }

    let mut ready: Vec<Arc<Node>> = Vec::new();
    for n in &root_nodes {
        let k = Arc::as_ptr(n);
        if deps.get(&k).copied().unwrap_or(0) == 0 && !ready.iter().any(|r| Arc::as_ptr(r) == k) {
            ready.push(n.clone());
        }
    }

    while let Some(node) = ready.pop() {
        let key = Arc::as_ptr(&node);
        let mut out_grads = buffers
            .remove(&key)
            .unwrap_or_else(|| vec![None; node.out_meta.len()]);

        // Hooks of the node's outputs (kept on the node), and retain_grad of the live ones.
        let outs: Vec<_> = node.outputs.lock().unwrap().clone();
        for (i, slot) in out_grads.iter_mut().enumerate() {
            let Some(g) = slot.take() else { continue };
            *slot = Some(apply_hooks(crate::tensor::node_hooks(&node, i), g)?);
        }
        for (i, w) in outs.iter().enumerate() {
            let Some(t) = w.upgrade() else { continue };
            let Some(g) = out_grads[i].take() else {
                continue;
            };
            let t = Tensor(t);
            if t.retains_grad() {
                let mut slot = t.0.grad.lock().unwrap();
                let gg = if create_graph { g.clone() } else { g.detach() };
                *slot = Some(match slot.take() {
                    None => gg,
                    Some(a) => a.add(&gg)?,
                });
            }
            out_grads[i] = Some(g);
        }
        for (i, g) in out_grads.iter().enumerate() {
            if let (Some(&k), Some(g)) = (cap_node.get(&(key, i)), g) {
                add_opt(&mut captured[k], g.clone())?;
            }
        }

        let in_grads = if out_grads.iter().any(|g| g.is_some()) {
            let saved_guard = node.saved.lock().unwrap();
            let saved = saved_guard.as_ref().ok_or_else(|| {
                Error::Autograd(format!(
                    "trying to backward through the graph a second time (through {}); \
                     specify retain_graph=true on the first backward",
                    node.op.name()
                ))
            })?;
            saved.check_versions(node.op.name())?;
            let ctx = Ctx {
                node: &node,
                saved,
                create_graph,
            };
            let g = crate::ops::backward(&node.op, &ctx, &out_grads)?;
            drop(saved_guard);
            if g.len() != node.edges.len() {
                return Err(Error::Autograd(format!(
                    "internal: backward of {} returned {} gradients for {} inputs",
                    node.op.name(),
                    g.len(),
                    node.edges.len()
                )));
            }
            g
        } else {
            vec![None; node.edges.len()]
        };
        if !retain_graph {
            *node.saved.lock().unwrap() = None;
        }

        for ((edge, g), (shape, _)) in node.edges.iter().zip(in_grads).zip(&node.input_meta) {
            let Some(edge) = edge else { continue };
            if let Some(g) = &g {
                if g.shape() != shape.as_slice() {
                    return Err(Error::Autograd(format!(
                        "internal: backward of {} produced a gradient of shape {:?} for an input of shape {:?}",
                        node.op.name(),
                        g.shape(),
                        shape
                    )));
                }
            }
            match edge {
                Edge::Node(c, i) => {
                    let k = Arc::as_ptr(c);
                    if let Some(g) = g {
                        let b = buffers
                            .entry(k)
                            .or_insert_with(|| vec![None; c.out_meta.len()]);
                        add_opt(&mut b[*i], g)?;
                    }
                    let d = deps.get_mut(&k).expect("counted");
                    *d -= 1;
                    if *d == 0 {
                        ready.push(c.clone());
                    }
                }
                Edge::Leaf(l) => {
                    if let Some(g) = g {
                        accumulate_leaf(&mut leaves, &Tensor(l.clone()), g)?;
                    }
                }
            }
        }
    }

    if capture.is_some() {
        for (id, lg) in leaves {
            if let Some(&k) = cap_leaf.get(&id) {
                let g = run_hooks(&lg.leaf, lg.grad)?;
                add_opt(&mut captured[k], g)?;
            }
        }
        if !create_graph {
            captured = captured
                .into_iter()
                .map(|g| g.map(|g| g.detach()))
                .collect();
        }
        return Ok(Some(captured));
    }
    for (_, lg) in leaves {
        let g = run_hooks(&lg.leaf, lg.grad)?;
        // (The graph-carrying handle is dropped here, so a detached gradient that nothing
        // else references is recognised as the sole owner of its buffer below.)
        let g = if create_graph { g } else { g.detach_owned() };
        let mut slot = lg.leaf.0.grad.lock().unwrap();
        *slot = Some(match slot.take() {
            None => {
                if create_graph {
                    g
                } else {
                    // Own the buffer: the gradient may alias a tensor used elsewhere (a
                    // buffer nothing else references is kept as it is).
                    let g = {
                        let r = g.realize()?;
                        drop(g);
                        r
                    };
                    if g.is_sole_owner() {
                        g
                    } else {
                        g.contiguous_copy()?
                    }
                }
            }
            Some(a) => a.add(&g)?,
        });
    }
    Ok(None)
}

fn accumulate_leaf(leaves: &mut HashMap<u64, LeafGrad>, leaf: &Tensor, g: Tensor) -> Result<()> {
    match leaves.get_mut(&leaf.id()) {
        Some(lg) => lg.grad = lg.grad.add(&g)?,
        None => {
            leaves.insert(
                leaf.id(),
                LeafGrad {
                    leaf: leaf.clone(),
                    grad: g,
                },
            );
        }
    }
    Ok(())
}
