#!/usr/bin/env python3
"""Loss and gradient of loss.name grpo (variants grpo, dapo, dr_grpo), from the published formulas.

    .venv/bin/python tools/make_grpo_fixtures.py   # writes tests/fixtures/loss/grpo_cases.json

An implementation independent of perpo's (src/loss/objectives.cpp works on whole tensors): plain
loops over lists, answers and tokens, each token's term built from Python scalars through torch
only so that autograd gives the gradient with respect to the policy's token log-probs.

  rho = exp(logp - old)                         per token; old = logp (detached) when absent
  term = -min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) + kl_beta k3
  k3 = exp(ref - logp) - (ref - logp) - 1       (Schulman's k3 estimator of KL(pi || ref))
  A  = (r - mean r) / (std r + std_eps), std over N - 1          grpo, dapo
  A  = r - mean r                                                dr_grpo

  grpo     (DeepSeekMath, Shao et al. 2024, eq. 3): mean over answers of each answer's token mean
  dapo     (DAPO, Yu et al. 2025, eq. 8): sum of the group's terms / the group's token count
  dr_grpo  (Dr. GRPO, Liu et al. 2025): sum of the group's terms / (N * max_tokens)

The batch loss is the mean over lists; with drop_all_equal the lists whose rewards are all equal
are left out of that mean (DAPO's dynamic sampling), 0 when no list is left. min() takes the
unclipped term when the two are equal, so the gradient flows through rho there; clip() is a
constant outside [1 - eps_low, 1 + eps_high]. Cases avoid ratios exactly on a clip boundary.

Each case of the JSON: the inputs (token_logps, token_mask, old_token_logps or null,
ref_token_logps or null, rewards; lists of B x N x A / B x N numbers), the settings, and the
expected loss, gradient (B x N x A) and counts (tokens, clipped_low, clipped_high, kl_sum,
lists_dropped) over the kept lists.
"""
import json
import math
import os
import random

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "loss", "grpo_cases.json")


def advantages(rewards, variant, std_eps):
    n = len(rewards)
    mean = sum(rewards) / n
    if variant == "dr_grpo":
        return [r - mean for r in rewards]
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (n - 1))
    return [(r - mean) / (std + std_eps) for r in rewards]


def reference_loss(case):
    s = case["settings"]
    logp = torch.tensor(case["token_logps"], dtype=torch.float64, requires_grad=True)
    mask = case["token_mask"]
    old = case["old_token_logps"]
    ref = case["ref_token_logps"]
    low, high = 1.0 - s["eps_low"], 1.0 + s["eps_high"]
    list_losses = []
    counts = {"tokens": 0.0, "clipped_low": 0.0, "clipped_high": 0.0, "kl_sum": 0.0,
              "lists_dropped": 0}
    for b, rewards in enumerate(case["rewards"]):
        if s["drop_all_equal"] and max(rewards) == min(rewards):
            counts["lists_dropped"] += 1
            continue
        adv = advantages(rewards, s["variant"], s["std_eps"])
        answer_sums, answer_lengths = [], []
        for i, a in enumerate(adv):
            total = torch.zeros((), dtype=torch.float64)
            length = 0
            for t, on in enumerate(mask[b][i]):
                if not on:
                    continue
                length += 1
                x = logp[b, i, t]
                old_x = x.detach() if old is None else old[b][i][t]
                rho = torch.exp(x - old_x)
                if rho.item() < low:
                    clipped_rho = torch.tensor(low, dtype=torch.float64)
                elif rho.item() > high:
                    clipped_rho = torch.tensor(high, dtype=torch.float64)
                else:
                    clipped_rho = rho
                unclipped, clipped = rho * a, clipped_rho * a
                term = -(unclipped if unclipped.item() <= clipped.item() else clipped)
                counts["tokens"] += 1
                counts["clipped_low"] += 1 if (rho.item() < low and a < 0) else 0
                counts["clipped_high"] += 1 if (rho.item() > high and a > 0) else 0
                if s["kl_beta"] > 0:
                    d = ref[b][i][t] - x
                    k3 = torch.exp(d) - d - 1
                    counts["kl_sum"] += k3.item()
                    term = term + s["kl_beta"] * k3
                total = total + term
            answer_sums.append(total)
            answer_lengths.append(length)
        n = len(adv)
        if s["variant"] == "grpo":
            loss = sum(t / max(l, 1) for t, l in zip(answer_sums, answer_lengths)) / n
        elif s["variant"] == "dapo":
            loss = sum(answer_sums) / max(sum(answer_lengths), 1)
        else:
            loss = sum(answer_sums) / (n * s["max_tokens"])
        list_losses.append(loss)
    if s["drop_all_equal"]:
        batch = sum(list_losses) / len(list_losses) if list_losses else logp.sum() * 0
    else:
        batch = sum(list_losses) / len(case["rewards"])
    batch.backward()
    return batch.item(), logp.grad.tolist(), counts


def random_case(rng, b, n, a, settings, rewards, old=True, ref=False, far=0.5):
    """Token log-probs in [-3, -0.05], answers of random lengths (1..a), old / ref shifted by up
    to `far` in log space (ratios from about e^-far to e^far: clipped on both sides)."""
    logps, mask, olds, refs = [], [], [], []
    for _ in range(b):
        lp_b, m_b, o_b, r_b = [], [], [], []
        for _ in range(n):
            length = rng.randint(1, a)
            lp = [round(rng.uniform(-3.0, -0.05), 6) for _ in range(a)]
            m = [1 if t < length else 0 for t in range(a)]
            # Padding holds junk (the loss must mask it out).
            lp = [v if on else -50.0 for v, on in zip(lp, m)]
            o = [round(v + rng.uniform(-far, far), 6) for v in lp]
            r = [round(v + rng.uniform(-far, far), 6) for v in lp]
            lp_b.append(lp)
            m_b.append(m)
            o_b.append(o)
            r_b.append(r)
        logps.append(lp_b)
        mask.append(m_b)
        olds.append(o_b)
        refs.append(r_b)
    return {"settings": settings, "token_logps": logps, "token_mask": mask,
            "old_token_logps": olds if old else None, "ref_token_logps": refs if ref else None,
            "rewards": rewards}


def settings(variant, eps_low=0.2, eps_high=0.2, kl_beta=0.0, std_eps=1e-4, max_tokens=0,
             drop_all_equal=False):
    return {"variant": variant, "eps_low": eps_low, "eps_high": eps_high, "kl_beta": kl_beta,
            "std_eps": std_eps, "max_tokens": max_tokens, "drop_all_equal": drop_all_equal}


def main():
    rng = random.Random(25)
    cases = {
        # Both clip sides, different lengths, junk in the padding; no KL.
        "grpo_clipped_both_sides": random_case(
            rng, 2, 4, 5, settings("grpo"), [[1.0, 0.0, 0.5, 0.25], [0.9, 0.1, 0.1, 0.6]]),
        # DAPO's clip-higher, the KL term, and a list of equal rewards dropped.
        "dapo_clip_higher_kl_dropped": random_case(
            rng, 3, 3, 4, settings("dapo", eps_high=0.28, kl_beta=0.1, drop_all_equal=True),
            [[1.0, 0.2, 0.0], [0.5, 0.5, 0.5], [0.3, 0.7, 0.7]], ref=True),
        # Dr. GRPO's constant normaliser, with KL; a list of equal rewards kept (KL alone moves it).
        "dr_grpo_kl_equal_rewards_kept": random_case(
            rng, 2, 3, 4, settings("dr_grpo", kl_beta=0.05, max_tokens=6),
            [[0.0, 1.0, 0.4], [0.8, 0.8, 0.8]], ref=True),
        # On-policy (no old log-probs): the ratio is 1 and the loss is the policy gradient.
        "grpo_on_policy": random_case(
            rng, 2, 3, 4, settings("grpo", kl_beta=0.02), [[1.0, 0.0, 0.0], [0.2, 0.6, 0.9]],
            old=False, ref=True),
        # Every list of the batch dropped: loss 0, no gradient.
        "dapo_all_dropped": random_case(
            rng, 2, 2, 3, settings("dapo", drop_all_equal=True), [[0.5, 0.5], [1.0, 1.0]]),
    }
    out = {}
    for name, case in cases.items():
        loss, grad, counts = reference_loss(case)
        case["expected"] = {"loss": loss, "grad": grad, **counts}
        out[name] = case
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    for name, case in out.items():
        e = case["expected"]
        print(f"{name}: loss {e['loss']:.6f} tokens {e['tokens']:.0f} clipped low "
              f"{e['clipped_low']:.0f} high {e['clipped_high']:.0f} kl_sum {e['kl_sum']:.4f} "
              f"dropped {e['lists_dropped']}")


if __name__ == "__main__":
    main()
