"""
Random shifts of image observations, DrQ's augmentation (Kostrikov et al., 2021, "Image Augmentation Is
All You Need"): each replayed frame stack is moved by up to ``pad`` pixels in each direction, its edge
pixels repeated into the gap, so the Q-network cannot fit the exact pixel position of what it saw.
"""

import torch as th


def random_shift(observations: th.Tensor, pad: int) -> th.Tensor:
    """
    Shift each observation of a batch by its own random offset in ``[-pad, pad]`` along both image axes.

    The same as DrQ's replicate-pad then random crop, done as two gathers with clamped coordinates
    (rows, then columns): any dtype (the replay's ``uint8`` too), no padded copy, and ~2x faster on a
    CPU than indexing both axes at once. All channels of one observation (its stacked frames) move
    together.

    :param observations: Batch of images, shape ``(batch, channels, height, width)``.
    :param pad: Largest shift in pixels (0: the batch unchanged).
    :return: The shifted batch, same shape, dtype and device.
    """
    if pad == 0:
        return observations
    shape = observations.shape
    n, _, height, width = shape
    device = observations.device
    offsets = th.randint(-pad, pad + 1, (2, n), device=device)
    rows = (th.arange(height, device=device) + offsets[0, :, None]).clamp_(0, height - 1)  # (n, height)
    columns = (th.arange(width, device=device) + offsets[1, :, None]).clamp_(0, width - 1)  # (n, width)
    moved = th.gather(observations, 2, rows[:, None, :, None].expand(shape))
    return th.gather(moved, 3, columns[:, None, None, :].expand(shape))
