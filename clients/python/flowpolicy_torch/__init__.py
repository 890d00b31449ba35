"""flowpolicy's ResMLP-FiLM flow-matching policy on PyTorch: a trainer that reads flowpolicy datasets and writes
flowpolicy checkpoints (`python -m flowpolicy_torch.train --help`), and the pieces `tools/pytorch_reference.py`
shares with it.

    network.py     the velocity network as a torch module, with flowpolicy's initialization
    noise.py       flowpolicy's random number generator (xoshiro256** seeded by SplitMix64, Box-Muller)
    data.py        normalizers, training pairs and the content hash of a dataset
    optimizer.py   the Swift trainer's AdamW settings, warm-up + cosine schedule and EMA
    trainer.py     one data-parallel flow-matching step (DistributedDataParallel)
    contract.py    the deployment contract from the task's task.yaml
    checkpoint.py  flowpolicy's checkpoint file, written byte for byte as flowpolicy writes it, and loaded
    sampling.py    fixed-step sampling from flowpolicy's seeded noise
    train.py       the command line

Needs torch, numpy, safetensors and PyYAML, and flowpolicy_data beside it (clients/python on the module path).
`scripts/test_torch.sh` installs them into their own virtual environment and tests the trainer against flowpolicy.
"""
