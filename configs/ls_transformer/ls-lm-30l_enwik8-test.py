# The paper's evaluation of the 30-layer model (official launch/run-eval.sh): the whole split as
# one stream, blocks of 256 tokens, a 32768-token memory. Test BPC:
#   python tools/test.py configs/ls_transformer/ls-lm-30l_enwik8-test.py CHECKPOINT
# Dev BPC: add --cfg-options test_dataloader.dataset.split=valid
_base_ = './ls-lm-30l_8xb1x4-50k_enwik8-8k.py'

model = dict(eval_mem_len=32768)
