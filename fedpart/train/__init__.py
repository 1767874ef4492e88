"""A thin torch core that trains on partition directories: FedAvg, FedProx, FedOpt and centralised
baselines, with client sampling, checkpoints and exact resume. torch is imported only here."""
