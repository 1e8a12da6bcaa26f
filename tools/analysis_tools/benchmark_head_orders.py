"""Which order per level for the folded All-MLP head: project then upsample, or upsample then
project? Times both, interleaved, for every level of every SegFormer variant's head.

Level i (i >= 1) maps its C_i-channel map at 1/2^(i+2) of the input by the folded (C x C_i)
weight and is upsampled bilinearly to 1/4. Projecting first costs C C_i n_i MACs plus upsampling
C channels to n_0 pixels; upsampling first costs upsampling C_i channels plus C C_i n_0 MACs,
with n_i = n_0 / 4^i. Both give the same result (exactly, up to float round-off).

    python tools/analysis_tools/benchmark_head_orders.py --shape 512 --threads 1
"""
import argparse

HEADS = {  # in_channels, C
    'b0': ([32, 64, 160, 256], 256),
    'b1': ([64, 128, 320, 512], 256),
    'b2-b5': ([64, 128, 320, 512], 768),
}


def project(x, weight):
    import torch.nn.functional as F

    from mmseg_ext.models.layers.token_map import to_map, to_seq
    return to_map(F.linear(to_seq(x), weight), x.shape[2:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', type=int, default=512, help='square input side')
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads')
    parser.add_argument('--repeat', type=int, default=10,
                        help='interleaved timed runs per order; the median is printed')
    args = parser.parse_args()
    import torch
    import torch.nn.functional as F

    from mmseg_ext.utils.timing import round_robin
    torch.set_num_threads(args.threads)
    size = (args.shape // 4, ) * 2
    print(f'input {args.shape}x{args.shape}, {args.threads} threads, median ms of '
          f'{args.repeat} interleaved runs')
    print('| head | level | C_i -> C | project, upsample | upsample, project | ratio |')
    print('|---|---|---|---|---|---|')
    for name, (dims, c) in HEADS.items():
        for i in range(1, len(dims)):
            side = -(-args.shape // 2 ** (i + 2))
            x = torch.randn(1, dims[i], side, side)
            weight = torch.randn(c, dims[i]) / dims[i] ** 0.5

            def first_project(x=x, weight=weight):
                return F.interpolate(project(x, weight), size, mode='bilinear')

            def first_upsample(x=x, weight=weight):
                return project(F.interpolate(x, size, mode='bilinear'), weight)

            with torch.inference_mode():
                torch.testing.assert_close(first_project(), first_upsample(), rtol=1e-4,
                                           atol=1e-4)
                ms = round_robin({'p': first_project, 'u': first_upsample}, args.repeat)
            print(f'| {name} | {i + 1} | {dims[i]} -> {c} | {ms["p"]:.1f} | {ms["u"]:.1f} | '
                  f'{ms["u"] / ms["p"]:.2f} |')


if __name__ == '__main__':
    main()
