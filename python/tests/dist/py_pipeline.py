"""A 2-stage pipeline (GPipe and 1F1B, 4 micro-batches) == the sequential model in one
process: output, loss and every parameter's gradient, over 3 batches. Run with mpirun -np 2."""
import copy

import deepseek as torch
import deepseek.distributed as dist
import deepseek.nn as nn
import deepseek.nn.functional as F
from deepseek.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

dist.init_process_group("mpi")
rank = dist.get_rank()

for schedule_class in (ScheduleGPipe, Schedule1F1B):
    for width in (16, 2048):  # 2048: activations above MPI's eager limit
        torch.manual_seed(0)
        full = nn.Sequential(nn.Linear(6, width), nn.Tanh(), nn.Linear(width, 3))
        reference = copy.deepcopy(full)
        part = nn.Sequential(full[0], full[1]) if rank == 0 else full[2]
        stage = PipelineStage(part, rank, 2)
        sched = schedule_class(stage, 4, loss_fn=F.mse_loss)
        torch.manual_seed(1)
        for it in range(3):
            x, y = torch.randn(16, 6), torch.randn(16, 3)
            reference.zero_grad()
            part.zero_grad()
            ref_loss = F.mse_loss(reference(x), y)
            ref_loss.backward()
            if rank == 0:
                assert sched.step(x) is None
            else:
                losses = []
                out = sched.step(target=y, losses=losses)
                assert (out - reference(x)).abs().max().item() <= 1e-5
                assert len(losses) == 4
                assert abs(torch.stack(losses).mean().item() - ref_loss.item()) <= 1e-5
            ref_part = (nn.Sequential(reference[0], reference[1]) if rank == 0
                        else reference[2])
            for (name, a), b in zip(part.named_parameters(), ref_part.parameters()):
                d = (a.grad - b.grad).abs().max().item()
                assert d <= 1e-5, f"{schedule_class.__name__} stage {rank} {name}: {d}"
try:
    PipelineStage(nn.Linear(2, 2), 1 - rank, 2)
    raise AssertionError("a stage on the wrong rank was accepted")
except ValueError as e:
    assert "stage i runs on rank i" in str(e)
print(f"rank {rank}: pipeline ok", flush=True)
dist.destroy_process_group()
