# enwik8, standard split (90M / 5M / 5M bytes) prepared by tools/misc/prepare_char_lm_data.py.
# Batches are the next block of the same streams: no shuffling (truncated BPTT, as official);
# a dataset's batch_size (streams per GPU) must equal its dataloader's.
# Training: 4 streams per GPU (8 GPUs: 32); validation: 32 streams per GPU. Test: ONE stream,
# i.e. the whole split in order, blocks of 256 with the memory carried (the paper's BPC).
data_root = 'data/enwik8'
stream_loader = dict(num_workers=2, persistent_workers=True,
                     sampler=dict(type='DefaultSampler', shuffle=False),
                     collate_fn=dict(type='default_collate'))
train_dataloader = dict(
    **stream_loader, batch_size=4,
    dataset=dict(type='CharLMDataset', data_root=data_root, split='train', seq_len=2048,
                 batch_size=4))
val_dataloader = dict(
    **stream_loader, batch_size=32,
    dataset=dict(type='CharLMDataset', data_root=data_root, split='valid', seq_len=2048,
                 batch_size=32))
test_dataloader = dict(
    **stream_loader, batch_size=1,
    dataset=dict(type='CharLMDataset', data_root=data_root, split='test', seq_len=256,
                 batch_size=1))
