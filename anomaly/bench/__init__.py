"""Benchmark: how close to this machine's convolution peak the network trains and scores, in every mode.

``python -m anomaly.bench [--device cuda] [--steps 10] [--json PATH] [--ucsd ROOT]`` (``make bench``).
Modules: ``timing`` (how every figure is timed), ``peaks`` (the machine: convolution peak, memory bandwidth),
``bounds`` (what the network's convolutions and inductor's kernels allow), ``modes`` (the network in each
mode), ``cli`` (the command: measures, prints, writes JSON).

In one run it measures:

1. the peak: GFLOP/s of a 3x3 convolution of each of the model's gate shapes (the three fused ConvLSTM gate
   convolutions, ``cat(x, h) -> 4C``) at the benchmark's training batch, in fp32 and bf16, each in NCHW and
   channels-last (NHWC) memory; the fastest of the six is the peak of that precision;
2. for each mode (eager / ``torch.compile``; fp32 / bf16 autocast; on a GPU also CUDA graphs through
   ``mode="reduce-overhead"``): training volumes/s (forward + backward + Adam, the recipe's optimiser) and
   test frames/s (one scored frame per test window, no gradients), each after warm-up (compile included);
   every timing here (peak, modes, ceiling) is the best of three runs; the three gate convolutions of the
   mode's precision (each in its faster layout) are timed again before and after each of a mode's runs, each
   for as long as the run lasts, and the fastest of them, the higher of its two readings beside the mode's
   best run, is the peak that mode is a fraction of (on a shared machine a convolution's speed moves by a
   fifth from one millisecond to the next and by a tenth for minutes: a run of a few calls catches its fast
   moments, a run of training steps cannot);
3. the FLOPs of one training volume and of one test window, counted by ``FlopCounterMode`` on the network
   (its own arithmetic: deconv3 as the transposed convolution), so that each mode's rate becomes GFLOP/s
   and a fraction of the peak of its precision measured beside it (the ceiling and the bounds too: of the
   peak measured beside the convolutions alone, just before, between and after their training and test
   timings, as beside a mode's runs);
4. the ceiling the convolutions set: every convolution call of a training step (forward + backward) and of
   a test batch, recorded as the network runs and timed on its own (in the faster memory layout); no mode can
   beat their sum, and the gap between it and a mode is the rest (gate arithmetic, copies, the optimiser,
   Python);
5. for the compiled modes, a tighter bound: the convolutions alone plus the memory traffic of the kernels that
   inductor generates for the rest (the gate arithmetic; inductor's own count of the bytes each kernel reads
   and writes, each buffer once) at this machine's memory bandwidth (a streaming add, measured in the same run).

Printed as a table; ``--json PATH`` writes ``{"device", "peak_gflops": {"fp32", "bf16"}, "flops", "modes":
[{"name", "precision", "compiled", "train_volumes_per_s", "test_frames_per_s", "train_peak_gflops",
"test_peak_gflops", "train_fraction_of_peak", "test_fraction_of_peak", "kernel_bytes_train",
"bound_train_fraction_of_peak", ...}], "convolutions_alone": {"fp32", "bf16"}, "memory_gb_per_s"}``. Only what
was measured is printed. With ``--ucsd ROOT`` it also reads one cached training epoch of a UCSD dataset without
the model (the data pipeline's cost).
"""
