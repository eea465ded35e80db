"""On a GPU: minibert against transformers on CUDA (fp32 and bf16 autocast), both attention paths and every
SDPA backend, a fully padded row, and torch.compile. Prints one line per check; exits 1 if any fails."""

import contextlib
import sys

import torch
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel

import minibert
from minibert.checkpoint import load_state_dict


def main() -> int:
    dev = torch.device("cuda")
    torch.manual_seed(0)
    cfg = minibert.BertConfig()
    hf = transformers.BertForSequenceClassification(transformers.BertConfig(**cfg.to_dict(), attn_implementation="eager")).to(dev).eval()
    mb = minibert.BertForSequenceClassification(cfg)
    load_state_dict(mb, hf.state_dict())
    mb = mb.to(dev).eval()
    ids = torch.randint(1000, 30000, (4, 300), device=dev)
    mask = torch.ones_like(ids)
    mask[1, 100:] = 0
    mask[2, :] = 0  # fully padded: its outputs are meaningless, only required to be finite
    real = torch.tensor([0, 1, 3], device=dev)
    failures = 0

    def check(name, a, b, tol):
        nonlocal failures
        finite = torch.isfinite(a).all().item()
        a, b = a[real].float(), b[real].float()
        err = ((a - b).norm() / b.norm()).item()
        ok = err < tol and finite
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: relative error {err:.2e} (< {tol:g}) on rows with tokens, finite everywhere: {finite}")

    def set_fused(model, fused):
        for layer in model.bert.encoder.layers:
            layer.attn.fused = fused

    with torch.no_grad():
        h = hf(ids, attention_mask=mask, output_hidden_states=True)
        set_fused(mb, False)
        m = mb(ids, attention_mask=mask, output_hidden_states=True)
        check("fp32 math last hidden", m.hidden_states[-1], h.hidden_states[-1], 1e-5)
        set_fused(mb, True)
        for backend in (None, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH):
            ctx = sdpa_kernel([backend]) if backend is not None else contextlib.nullcontext()  # default: PyTorch picks
            name = backend.name if backend is not None else "default"
            try:
                with ctx:
                    m = mb(ids, attention_mask=mask, output_hidden_states=True)
                    check(f"fp32 sdpa[{name}] last hidden", m.hidden_states[-1], h.hidden_states[-1], 1e-5)
                    print(f"     row 2 (fully padded) [CLS] mean: minibert {m.hidden_states[-1][2, 0].mean().item():.4f}  transformers {h.hidden_states[-1][2, 0].mean().item():.4f}")
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        mbf = mb(ids, attention_mask=mask).logits
                    check(f"bf16 sdpa[{name}] logits vs fp32 reference", mbf, h.logits, 3e-2)
            except RuntimeError as e:
                print(f"n/a  sdpa[{name}]: {str(e)[:120]}")
        unpadded = mb(ids[:1]).logits
        check("no-mask (flash) path", torch.cat([unpadded, unpadded, unpadded, unpadded]), hf(ids[:1].expand(4, -1)).logits, 1e-5)
        compiled = torch.compile(mb)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            check("compiled bf16 logits", compiled(ids, attention_mask=mask).logits, h.logits, 3e-2)
    hs = transformers.BertModel(transformers.BertConfig(**cfg.to_dict(), attn_implementation="sdpa")).to(dev).eval()
    hs.load_state_dict({k.removeprefix("bert."): v for k, v in hf.state_dict().items() if k.startswith("bert.")})
    with torch.no_grad():
        print(f"     transformers sdpa, row 2 [CLS] mean: {hs(ids, attention_mask=mask).last_hidden_state[2, 0].mean().item():.4f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
