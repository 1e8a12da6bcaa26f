# The official Transformer-LS LRA model (NVIDIA/transformer-ls lra/model.py with --cls_last_layer,
# run_tasks.py defaults): token + learned position embeddings, 2 pre-norm blocks of LSAttention1d
# (C=64, 2 heads, w=8, r=32, MLP 128), a CLS vector joined in the last block, head MLP 128.
model = dict(
    type='LRAClassifier', num_classes=10, vocab_size=512, max_len=4096, embed_dims=64, depth=2,
    num_heads=2, mlp_dims=128, window_size=8, dp_rank=32, drop=0., attn_drop=0., pool='cls',
    dual=False, head_dims=128)
