//! How the Megatron layers' parameters are split: their [`ShardedModule`] impls, named as
//! the unsplit modules name them.

use super::{ShardedModule, ShardedParam};
use crate::distributed::tensor_parallel::{
    ColumnParallelLinear, ParallelMultiheadAttention, RowParallelLinear, VocabParallelEmbedding,
};

impl ShardedModule for ColumnParallelLinear {
    fn sharded_parameters(&self, prefix: &str) -> Vec<ShardedParam> {
        let g = Some(&self.group);
        let mut v = vec![ShardedParam::sharded(
            crate::nn::join(prefix, "weight"),
            &self.weight,
            0,
            1,
            g,
        )];
        if let Some(b) = &self.bias {
            v.push(ShardedParam::sharded(
                crate::nn::join(prefix, "bias"),
                b,
                0,
                1,
                g,
            ));
        }
        v
    }
}

impl ShardedModule for RowParallelLinear {
    fn sharded_parameters(&self, prefix: &str) -> Vec<ShardedParam> {
        let g = &self.group;
        let mut v = vec![ShardedParam::sharded(
            crate::nn::join(prefix, "weight"),
            &self.weight,
            1,
            1,
            Some(g),
        )];
        if let Some(b) = &self.bias {
            let mut p = ShardedParam::replicated(crate::nn::join(prefix, "bias"), b);
            p.group = Some(g.clone());
            v.push(p);
        }
        v
    }
}

impl ShardedModule for ParallelMultiheadAttention {
    /// The in-projection by rows of each of its q, k, v blocks (this rank's heads), the
    /// output projection by columns, its bias replicated — the names of
    /// `MultiheadAttention`'s state dict.
    fn sharded_parameters(&self, prefix: &str) -> Vec<ShardedParam> {
        let g = Some(&self.group);
        let name = |n: &str| crate::nn::join(prefix, n);
        let mut v = vec![ShardedParam::sharded(
            name("in_proj_weight"),
            &self.in_proj_weight,
            0,
            3,
            g,
        )];
        if let Some(b) = &self.in_proj_bias {
            v.push(ShardedParam::sharded(name("in_proj_bias"), b, 0, 3, g));
        }
        v.push(ShardedParam::sharded(
            name("out_proj.weight"),
            &self.out_proj_weight,
            1,
            1,
            g,
        ));
        if let Some(b) = &self.out_proj_bias {
            let mut p = ShardedParam::replicated(name("out_proj.bias"), b);
            p.group = Some(self.group.clone());
            v.push(p);
        }
        v
    }
}

impl ShardedModule for VocabParallelEmbedding {
    /// The table by vocabulary rows.
    fn sharded_parameters(&self, prefix: &str) -> Vec<ShardedParam> {
        vec![ShardedParam::sharded(
            crate::nn::join(prefix, "weight"),
            &self.weight,
            0,
            1,
            Some(&self.group),
        )]
    }
}
