"""A tiny HF transformers causal-LM program, unmodified torch code, run on real torch and under the shim.

  hf_tiny.py init --archs qwen2,llama --dir D          real torch: seeded tiny models, save_pretrained(D/<arch>)
  hf_tiny.py run  --archs ... --dir D --out O          per arch: load D/<arch>; loss, backward, AdamW step,
                                                       generate (greedy, seeded sampling), save_pretrained
  hf_tiny.py load --archs ... --dir S --out O          from_pretrained(S/<arch>/saved), dump weights to O/<arch>.npz
  hf_tiny.py trainer --archs qwen2 --dir D --out O     transformers.Trainer, 3 steps on an in-memory dataset;
                                                       O/<arch>/trainer.json: logged losses, grad norms, weights;
                                                       under torchrun per rank (see trainer())

`run` writes O/<arch>/result.json (loss, greedy and sampled tokens, torch version) and O/<arch>/arrays.npz (every
gradient and every updated weight, by parameter name) for the test to compare with the other backend's.
HF_ATTN selects the attention implementation (sdpa by default, or eager).
"""
import argparse
import json
import os

import numpy as np
import torch

import transformers


def config(arch):
    common = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=128, max_position_embeddings=64, tie_word_embeddings=False)
    if arch == "qwen2":
        return transformers.Qwen2Config(**common)
    if arch == "llama":
        return transformers.LlamaConfig(**common)
    raise SystemExit(f"unknown arch {arch}")


def model_class(arch):
    return transformers.Qwen2ForCausalLM if arch == "qwen2" else transformers.LlamaForCausalLM


def run(arch, src, out):
    os.makedirs(out, exist_ok=True)
    model = model_class(arch).from_pretrained(src, attn_implementation=os.environ.get("HF_ATTN", "sdpa"),
                                              dtype=torch.float32)
    model.train()
    ids = torch.tensor([[5, 17, 99, 3, 42, 7, 64, 11], [1, 2, 3, 4, 5, 6, 7, 8]])
    out_ = model(input_ids=ids, labels=ids)
    out_.loss.backward()
    arrays = {}
    for name, prm in model.named_parameters():
        arrays["grad/" + name] = prm.grad.detach().numpy().copy()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    opt.step()
    opt.zero_grad()
    for name, prm in model.named_parameters():
        arrays["weight/" + name] = prm.detach().numpy().copy()
    loss2 = model(input_ids=ids, labels=ids).loss.item()
    model.eval()
    prompt = torch.tensor([[5, 17, 99, 3]])
    greedy = model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=0)
    torch.manual_seed(1234)
    sampled = model.generate(prompt, max_new_tokens=8, do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                             pad_token_id=0)
    model.save_pretrained(os.path.join(out, "saved"), safe_serialization=True)
    np.savez(os.path.join(out, "arrays.npz"), **arrays)
    result = {"torch_version": torch.__version__, "loss": out_.loss.item(), "loss_after_step": loss2,
              "logits_shape": list(out_.logits.shape), "greedy": greedy.tolist(), "sampled": sampled.tolist()}
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f)


class _Rows(torch.utils.data.Dataset):
    """8 fixed token rows of length 8 (labels = input_ids; the model shifts them)."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        ids = torch.tensor([(i * 7 + j * 3) % 128 for j in range(8)])
        return {"input_ids": ids, "labels": ids.clone()}


def trainer(arch, src, out, use_cpu=True):
    """Trainer, 3 steps, ``use_cpu`` as given (HF's default is False: on a machine without CUDA, accelerate then
    runs each torchrun rank alone; with True it runs DDP on CPU with gloo; under the shim, False takes the GPU path:
    DDP on "cuda:<local_rank>" with nccl). Under torchrun (WORLD_SIZE > 1) each rank writes trainer_rank<R>.json
    and trainer_rank<R>.npz (step 1's gradients as the optimizer sees them, every weight after step 1 and at the end)."""
    os.makedirs(out, exist_ok=True)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    model = model_class(arch).from_pretrained(src, dtype=torch.float32)
    args = transformers.TrainingArguments(
        output_dir=os.path.join(out, "run"), per_device_train_batch_size=2, max_steps=3, learning_rate=1e-2,
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=use_cpu, seed=0, dataloader_num_workers=0,
        disable_tqdm=True)
    first_step: dict = {}

    class FirstStep(transformers.TrainerCallback):
        """Records step 1's gradients as the optimizer sees them (DDP-averaged, clipped) and the weights after it."""

        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            if state.global_step == 0:
                first_step.update({"grad/" + n: p.grad.detach().cpu().numpy().copy()
                                   for n, p in model.named_parameters()})

        def on_optimizer_step(self, args, state, control, model=None, **kwargs):
            if state.global_step == 0:
                first_step.update({"step1/" + n: p.detach().cpu().numpy().copy() for n, p in model.named_parameters()})

    tr = transformers.Trainer(model=model, args=args, train_dataset=_Rows(), callbacks=[FirstStep()])
    tr.train()
    logs = [h for h in tr.state.log_history if "loss" in h]
    result = {"torch_version": torch.__version__, "losses": [float(h["loss"]) for h in logs],
              "grad_norms": [float(h["grad_norm"]) for h in logs], "lrs": [float(h["learning_rate"]) for h in logs],
              "weights": {n: p.detach().numpy().ravel()[:64].tolist() for n, p in model.named_parameters()}}
    if world == 1:
        with open(os.path.join(out, "trainer.json"), "w") as f:
            json.dump(result, f)
        return
    import torch.distributed as dist
    rank = dist.get_rank()
    del result["weights"]
    result.update(rank=rank, world_size=dist.get_world_size(), backend=dist.get_backend(),
                  distributed_type=str(tr.accelerator.distributed_type), device=str(tr.args.device),
                  wrapped=type(tr.model_wrapped).__module__ + "." + type(tr.model_wrapped).__name__,
                  grad_bucket_type=dist.GradBucket.__name__)
    with open(os.path.join(out, f"trainer_rank{rank}.json"), "w") as f:
        json.dump(result, f)
    np.savez(os.path.join(out, f"trainer_rank{rank}.npz"), **first_step,
             **{"final/" + n: p.detach().cpu().numpy() for n, p in model.named_parameters()})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["init", "run", "load", "trainer"])
    p.add_argument("--archs", default="qwen2,llama")
    p.add_argument("--dir", required=True)
    p.add_argument("--out")
    p.add_argument("--use-cpu", default="true", choices=["true", "false"], help="trainer: TrainingArguments.use_cpu")
    a = p.parse_args()
    for arch in a.archs.split(","):
        if a.mode == "init":
            torch.manual_seed(0)
            model_class(arch)(config(arch)).save_pretrained(os.path.join(a.dir, arch), safe_serialization=True)
        elif a.mode == "run":
            run(arch, os.path.join(a.dir, arch), os.path.join(a.out, arch))
        elif a.mode == "trainer":
            trainer(arch, os.path.join(a.dir, arch), os.path.join(a.out, arch), use_cpu=a.use_cpu == "true")
        else:
            os.makedirs(a.out, exist_ok=True)
            model = model_class(arch).from_pretrained(os.path.join(a.dir, arch, "saved"), dtype=torch.float32)
            np.savez(os.path.join(a.out, arch + ".npz"),
                     **{n: prm.detach().numpy() for n, prm in model.named_parameters()})

if __name__ == "__main__":
    main()
