# The paper's evaluation (official launch/run-eval.sh): the whole split as one stream, blocks of
# 256 tokens, a 32768-token memory carried across blocks. Test BPC:
#   python tools/test.py configs/ls_transformer/ls-lm-12l_text8-test.py CHECKPOINT
# Dev BPC: add --cfg-options test_dataloader.dataset.split=valid
_base_ = './ls-lm-12l_8xb2-50k_text8-8k.py'

model = dict(eval_mem_len=32768)
