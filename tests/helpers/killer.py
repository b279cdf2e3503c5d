"""A Lightning callback that kills its own process with SIGKILL after a given training step (resume tests)."""

import os
import signal

import pytorch_lightning as pl


class KillAfterStep(pl.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class KillAtEpochStart(pl.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)
