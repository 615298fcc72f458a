"""
Training throughput of the rl-zoo3 entries: env steps/s and gradient steps/s, one short run each.

    python scripts/bench_training.py                    # notebook entry and CPU entry, 1 env
    python scripts/bench_training.py --scaling          # CPU entry with n_envs 1/2/4 and 1/2 torch threads
    python scripts/bench_training.py --precision --baseline /tmp/sb3-mario-9eeb578
        # each entry with fp32 and bf16 forward passes, and with the code of another checkout
        # (e.g. `git worktree add /tmp/sb3-mario-9eeb578 9eeb578`), interleaved, with ratios
    python scripts/bench_training.py --options --baseline /tmp/sb3-mario-69a3b47
        # the flag entry with each speed option of the learner on and off (bf16, env steps
        # overlapped with training in subprocess envs, replay on the device), interleaved, with ratios
        # to the baseline checkout's code run in fp32 (the learner before bf16 and these options)

With n envs, ``train_freq`` is divided by n so that every configuration does the same number of
gradient steps per transition (SB3 counts ``train_freq`` in vectorised steps).
"""

import argparse
import os
import platform
import tempfile

import torch as th
import yaml
from harness import zoo_training_fps

# Entry -> (algorithm, env steps per measurement: ~1,000 training steps take the notebook entry as long as
# ~2,300 the others; rates come from SB3's logs, whose clock ticks in seconds).
ENTRIES = {
    "hyperparams/dqn.yml": ("dqn", 1200),
    "hyperparams/dqn_cpu.yml": ("dqn", 2500),
    "hyperparams/ddqn.yml": ("ddqn", 2500),
}


def measure(
    conf: str,
    steps: int,
    n_envs: int = 1,
    vec_env: str = "dummy",
    num_threads: int = -1,
    algo: str = "dqn",
    precision: str | None = None,
    code: str | None = None,
    params: tuple[str, ...] = (),
    device: str = "auto",
    quiet: bool = False,
) -> float:
    with open(conf) as file:
        entry = yaml.safe_load(file)["MarioShaped"]
    train_freq = max(entry["train_freq"] // n_envs, 1)
    gradient_steps = entry.get("gradient_steps", 1) * max(n_envs // entry["train_freq"], 1)
    overrides = [f"n_envs:{n_envs}", f"train_freq:{train_freq}", f"gradient_steps:{gradient_steps}"]
    if precision is not None or code is not None:
        # The entry's policy_kwargs with the precision replaced (removed for older code, which has none).
        policy_kwargs = eval(entry.get("policy_kwargs", "dict()"))  # an entry's own string, as rl-zoo3 evals it
        policy_kwargs.pop("precision", None)
        if precision is not None:
            policy_kwargs["precision"] = precision
        overrides.append(f"policy_kwargs:{policy_kwargs!r}")
    overrides += params
    with tempfile.TemporaryDirectory() as log_folder:
        fps = zoo_training_fps(conf, steps, log_folder, vec_env, num_threads, tuple(overrides), algo, code, device)
    gradient_steps_per_transition = gradient_steps / (train_freq * n_envs)
    if not quiet:
        threads = "default" if num_threads < 0 else num_threads
        print(
            f"{conf:26s} batch {entry['batch_size']:3d} n_envs {n_envs} {vec_env:7s} torch threads {threads:7}: "
            f"{fps:6.1f} env steps/s, {fps * gradient_steps_per_transition:5.1f} gradient steps/s"
        )
    return fps


# The learner's speed options on the flag entry (DoubleDQN), each against the entry as committed.
OVERLAP = ("overlap_env_steps:True",)
ON_DEVICE = ("replay_buffer_kwargs:dict(handle_timeout_termination=False, storage='device')",)
LEARNER_OPTIONS = {
    "committed": dict(),
    "fp32": dict(precision="fp32"),
    "overlap 1 subproc env": dict(vec_env="subproc", params=OVERLAP),
    "overlap 2 subproc envs": dict(vec_env="subproc", n_envs=2, params=OVERLAP),
    "replay on device": dict(params=ON_DEVICE),
    "overlap 2 subproc envs + replay on device": dict(vec_env="subproc", n_envs=2, params=OVERLAP + ON_DEVICE),
    # train_freq 1: every vectorised step (4 transitions) is played while one gradient step runs.
    "overlap 4 subproc envs": dict(vec_env="subproc", n_envs=4, params=OVERLAP),
    "overlap 4 subproc envs + replay on device": dict(vec_env="subproc", n_envs=4, params=OVERLAP + ON_DEVICE),
}


def compare(
    entries: dict[str, tuple[str, int]], variants: dict[str, dict], baseline: str | None, repeats: int, device: str = "auto"
) -> None:
    """
    Each entry in each variant (and with the baseline checkout's code), interleaved; mean env steps/s
    and the ratio to the first variant, or to the baseline when there is one.
    """
    if baseline:
        # The entry without its precision: fp32, and runnable by code older than the option.
        variants = {"baseline fp32": dict(code=baseline), **variants}
    for conf, (algo, steps) in entries.items():
        if baseline and not os.path.isfile(os.path.join(baseline, conf)):
            continue
        fps = {name: [] for name in variants}
        for _ in range(repeats):
            for name, options in variants.items():
                fps[name].append(measure(conf, steps, algo=algo, device=device, quiet=True, **options))
        means = {name: sum(values) / len(values) for name, values in fps.items()}
        reference = next(iter(means.values()))
        cells = ", ".join(f"{name} {mean:6.1f} ({mean / reference:.2f}x)" for name, mean in means.items())
        print(f"{conf:26s} --algo {algo:4s}: env steps/s {cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2500, help="env steps per run (training starts after 200)")
    parser.add_argument("--scaling", action="store_true", help="CPU entry over n_envs and torch threads")
    parser.add_argument("--precision", action="store_true", help="each entry with fp32 and bf16 forward passes")
    parser.add_argument("--options", action="store_true", help="the flag entry with each learner speed option")
    parser.add_argument("--baseline", default=None, help="with --precision/--options: also measure another checkout's code")
    parser.add_argument("--repeats", type=int, default=2, help="with --precision/--options: interleaved rounds")
    parser.add_argument("--device", default="auto", help="with --precision/--options: torch device (e.g. cuda)")
    parser.add_argument(
        "--variants", nargs="+", choices=LEARNER_OPTIONS, default=list(LEARNER_OPTIONS), help="with --options: which to run"
    )
    parser.add_argument(
        "--entries", nargs="+", choices=ENTRIES, default=list(ENTRIES), help="with --precision: entries to measure"
    )
    args = parser.parse_args()
    gpu = f", GPU: {th.cuda.get_device_name()}" if th.cuda.is_available() else ""
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {th.__version__} ({th.get_num_threads()} threads){gpu}"
    )
    if args.precision:
        precisions = {"fp32": dict(precision="fp32"), "bf16": dict(precision="bf16")}
        entries = {conf: ENTRIES[conf] for conf in args.entries}
        compare(entries, precisions, args.baseline, args.repeats, args.device)
    elif args.options:
        flag_entry = {"hyperparams/ddqn.yml": ENTRIES["hyperparams/ddqn.yml"]}
        variants = {name: LEARNER_OPTIONS[name] for name in args.variants}
        compare(flag_entry, variants, args.baseline, args.repeats, args.device)
    elif args.scaling:
        for n_envs, vec_env in ((1, "dummy"), (2, "dummy"), (2, "subproc"), (4, "subproc")):
            for num_threads in (1, 2):
                measure("hyperparams/dqn_cpu.yml", args.steps, n_envs, vec_env, num_threads)
    else:
        for conf in ("hyperparams/dqn.yml", "hyperparams/dqn_cpu.yml"):
            measure(conf, args.steps)


if __name__ == "__main__":
    main()
