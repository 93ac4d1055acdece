"""Starting noise for every frame of a clip: drawn anew per frame, shared by all frames, or carried along the
source's motion (after "How I Warped Your Noise", Chang et al., ICLR 2024, in a simple discrete form).

Carrying works on "noise particles" over a grid of cells (a latent pixel, or one of Flux's 2x2 token patches).
Frame 0 gives every cell a particle with its own standard-normal values (ids in raster order). From frame to
frame each particle moves by the source's flow at its position; its position is kept with sub-cell precision, so
slow motion still adds up. A particle then holds the cell it rounds to; where two land in one cell the one
nearer the centre holds it. Cells nobody holds (disoccluded, or entering at an edge) get a new particle with
fresh values.

Estimated flow is not exact, and a carry that only rounds loses particles to its errors: where neighbouring
cells' flows differ by a few hundredths of a cell, two particles round into one cell and one is dropped, while a
cell near them empties and gets fresh noise: a point of the scene whose noise changes, the flicker flow noise
exists to remove (with ±0.05 cells of random error per cell only a third of what stayed visible kept its noise).
So two things keep what stays visible:
- the flow a particle moves by is the median of the cell flows over the 5x5 cells around it (per component)
  wherever the cell's own flow is within 0.25 cells of that median, so neighbours that move alike move exactly
  alike (a median keeps a pan, a zoom or a rotation: flows linear over the window); a cell whose flow differs
  by more (a small moving object, a motion edge) keeps its own, since a median alone would stop an object
  smaller than half the window;
- the particle that loses a collision is not dropped: it takes the nearest empty cell within 2 cells (Chebyshev)
  of the one it rounds to, and keeps its true position, so it is back in its own cell once there is room.
  Losers are placed nearest first (distance from the particle to the cell's centre, then the older id). A loser
  with no empty cell that near is occluded and dropped; it never comes back.
Every frame's noise is still independent standard-normal per element: each cell holds a different particle, and
which particle is where depends on the flow only, never on the values. tests/core/test_video_noise_survival.py
measures how many survive.

A long clip is carried in segments (the runner's --segment-frames): CarryState is where the particles stand after a
segment's last frame, and carry_cells continues from it, so segments give exactly the cells of one carry. A
particle's values depend on its id and the seed only (drawn in blocks of VALUE_BLOCK ids, one generator per
block), so a segment draws only the blocks its ids fall in and still gets the values the whole clip would.

Pure numpy/torch; the flow comes from optical_flow.py.
"""
from __future__ import annotations

import base64
import binascii
import io
import zipfile
from dataclasses import dataclass, field

import numpy as np
import torch

INDEPENDENT, SHARED, FLOW = "independent", "shared", "flow"
MODES = (INDEPENDENT, SHARED, FLOW)
LATENT_PIXEL, FLUX_PATCH = "latent pixels", "2x2 patches"
CARRY_GRIDS = {LATENT_PIXEL: 1, FLUX_PATCH: 2}  # cell size in latent pixels


@dataclass(frozen=True)
class CarriedCells:
    """Which particle sits in each cell of each frame: `particles` [T, rows, cols] int64 ids, 0 .. count - 1,
    ids given in order of birth (frame 0's in raster order), never two alike within a frame."""

    particles: np.ndarray
    count: int
    prior_count: int | None = None  # continuing a clip: the ids that existed before this segment's first frame
    end: tuple | None = field(default=None, repr=False)  # the live particles after the last frame: (ids, xs, ys)

    def fresh_fraction(self) -> list[float]:
        """Per frame after the clip's first: the share of cells whose particle was born in that frame (ids grow
        with birth, so those are the ids above every earlier frame's largest). A continued segment's first frame
        counts too (against the ids before it)."""
        newest_so_far = np.maximum.accumulate(self.particles.reshape(len(self.particles), -1).max(axis=1))
        fresh = [float(np.mean(self.particles[t] > newest_so_far[t - 1])) for t in range(1, len(self.particles))]
        if self.prior_count is not None:
            fresh.insert(0, float(np.mean(self.particles[0] >= self.prior_count)))
        return fresh

    def state(self, frames_before: int, cell: int, last_planes: np.ndarray) -> CarryState:
        """Where the particles stand after this clip's last frame (a fresh carry, or one continued after
        `frames_before` frames), for the next segment."""
        ids, xs, ys = self.end
        frames, rows, cols = self.particles.shape
        return CarryState(ids, xs, ys, self.count, frames_before + frames, rows, cols, cell, last_planes)


def _bilinear(field: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """field [rows, cols, 2] at continuous cell coordinates, clamped to the grid."""
    rows, cols = field.shape[:2]
    xs = np.clip(xs, 0, cols - 1)
    ys = np.clip(ys, 0, rows - 1)
    x0, y0 = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, cols - 1), np.minimum(y0 + 1, rows - 1)
    wx, wy = (xs - x0)[:, None], (ys - y0)[:, None]
    top = field[y0, x0] * (1 - wx) + field[y0, x1] * wx
    bottom = field[y1, x0] * (1 - wx) + field[y1, x1] * wx
    return top * (1 - wy) + bottom * wy


# The flow a particle moves by: the median over this many cells each way around it, where the cell's own flow is
# within FLOW_SNAP cells of it (else its own). A collision's loser takes the nearest empty cell at most this many
# cells (Chebyshev) from the one it rounds to.
FLOW_MEDIAN_RADIUS, FLOW_SNAP, RELOCATION_REACH = 2, 0.25, 2
_REACH_OFFSETS = np.array([(dx, dy) for dy in range(-RELOCATION_REACH, RELOCATION_REACH + 1)
                           for dx in range(-RELOCATION_REACH, RELOCATION_REACH + 1) if dx or dy], dtype=np.int64)


def _median_field(field: np.ndarray, radius: int) -> np.ndarray:
    """field [rows, cols, 2]: the per-component median over the (2 radius + 1)^2 cells around each cell, the
    grid's edge repeated outwards."""
    rows, cols = field.shape[:2]
    padded = np.pad(field, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    size = 2 * radius + 1
    windows = np.stack([padded[dy:dy + rows, dx:dx + cols] for dy in range(size) for dx in range(size)])
    return np.median(windows, axis=0)


def _regularised_flow(field: np.ndarray) -> np.ndarray:
    """Each cell's flow, or the median of its neighbourhood where the two differ by at most FLOW_SNAP cells in
    each component: estimation error of a few hundredths of a cell is smoothed away, while a cell that really moves
    otherwise than its neighbours (a small object, a motion edge) keeps its own flow."""
    median = _median_field(field, FLOW_MEDIAN_RADIUS)
    close = np.abs(field - median).max(axis=-1, keepdims=True) <= FLOW_SNAP
    return np.where(close, median, field)


def _place_losers(holder: np.ndarray, lost: np.ndarray, xs: np.ndarray, ys: np.ndarray, cx: np.ndarray,
                  cy: np.ndarray, ids: np.ndarray, rows: int, cols: int) -> None:
    """Each loser (particle indices `lost`) into the nearest empty cell within RELOCATION_REACH of the cell
    (cx, cy) it rounds to, nearest pairs first (distance from its position to the cell's centre, then the older
    id); `holder` (cell -> particle index, -1 where empty) is filled in place. A loser left without a cell is out."""
    nx = cx[lost][:, None] + _REACH_OFFSETS[:, 0]
    ny = cy[lost][:, None] + _REACH_OFFSETS[:, 1]
    loser = np.broadcast_to(lost[:, None], nx.shape)
    ok = (nx >= 0) & (nx < cols) & (ny >= 0) & (ny < rows)
    nx, ny, loser = nx[ok], ny[ok], loser[ok]
    target = ny * cols + nx
    free = holder[target] < 0
    target, loser, nx, ny = target[free], loser[free], nx[free], ny[free]
    distance = (xs[loser] - nx) ** 2 + (ys[loser] - ny) ** 2
    placed = np.zeros(len(xs), dtype=bool)
    for k in np.lexsort((ids[loser], distance)):
        cell, who = target[k], loser[k]
        if holder[cell] < 0 and not placed[who]:
            holder[cell] = who
            placed[who] = True


@dataclass(frozen=True)
class CarryState:
    """Where the particles stand after a clip's last frame, so a clip edited in segments carries its noise on as
    if it were one: the live particles' ids and true positions (cells, sub-cell precise), how many ids exist, how
    many frames came before, and the last frame's flow planes (optical_flow.frame_planes, [3, H, W] uint8), for the
    flow into the next segment's first frame."""

    ids: np.ndarray  # int64 [n]
    xs: np.ndarray  # float64 [n]
    ys: np.ndarray  # float64 [n]
    count: int
    frames: int  # frames carried so far, over every segment
    rows: int
    cols: int
    cell: int  # the carry grid's cell size in latent pixels
    last_planes: np.ndarray  # uint8 [3, H, W]

    def to_text(self) -> str:
        """The state as ASCII (zlib-compressed npz, base64), to travel in a prompt's string input."""
        out = io.BytesIO()
        np.savez_compressed(out, ids=self.ids, xs=self.xs, ys=self.ys, last_planes=self.last_planes,
                            header=np.array([CARRY_FORMAT, self.count, self.frames, self.rows, self.cols, self.cell],
                                            dtype=np.int64))
        return CARRY_PREFIX + base64.b64encode(out.getvalue()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> CarryState:
        """The state to_text wrote; ValueError (one line) for anything else."""
        text = text.strip()
        if not text.startswith(CARRY_PREFIX):
            raise ValueError(f"the carry state does not start with {CARRY_PREFIX!r}: it is not one ICEdit Video Noise "
                             "reported (the runner passes it from one segment to the next)")
        try:
            with np.load(io.BytesIO(base64.b64decode(text[len(CARRY_PREFIX):], validate=True))) as data:
                arrays = {name: data[name] for name in ("ids", "xs", "ys", "last_planes", "header")}
        except (ValueError, OSError, KeyError, binascii.Error, zipfile.BadZipFile) as error:
            raise ValueError(f"the carry state is damaged ({type(error).__name__}: {error})") from None
        version, count, frames, rows, cols, cell = (int(v) for v in arrays["header"])
        if version != CARRY_FORMAT:
            raise ValueError(f"the carry state is format {version}; this pack reads format {CARRY_FORMAT}")
        return cls(arrays["ids"].astype(np.int64), arrays["xs"].astype(np.float64), arrays["ys"].astype(np.float64),
                   count, frames, rows, cols, cell, arrays["last_planes"].astype(np.uint8))

    def check_continues(self, rows: int, cols: int, cell: int, planes_shape: tuple) -> None:
        """A one-line error when this state cannot start a segment of that grid and frame size."""
        if (self.rows, self.cols, self.cell) != (rows, cols, cell) or tuple(self.last_planes.shape) != planes_shape:
            raise ValueError(
                f"the carry state is of a clip whose frames were {self.last_planes.shape[2]}x"
                f"{self.last_planes.shape[1]} on {self.cols}x{self.rows} cells of {self.cell}x{self.cell} latent "
                f"pixels; this segment's are {planes_shape[2]}x{planes_shape[1]} on {cols}x{rows} cells of "
                f"{cell}x{cell}: every segment of a clip must be laid out alike (same panel width, same carry)")


CARRY_PREFIX, CARRY_FORMAT = "icedit-carry:", 1


def carry_cells(cell_flows: np.ndarray, rows: int, cols: int, start: CarryState | None = None) -> CarriedCells:
    """Particles carried along `cell_flows` (forward flow of frame t -> t + 1, in cells, (dx, dy)): over
    len(cell_flows) + 1 frames from a fresh start (frame 0: one particle per cell), or, continuing from `start`
    (the state after the previous segment's last frame), over len(cell_flows) frames, flow 0 leading from that
    last frame into this segment's first. Carrying a clip in segments gives exactly the cells of one carry."""
    if cell_flows.ndim != 4 or cell_flows.shape[1:] != (rows, cols, 2):
        raise ValueError(f"cell flows have shape {cell_flows.shape}; expected [frames - 1, {rows}, {cols}, 2]")
    if start is None:
        ids, xs, ys = _one_per_cell(rows, cols)
        count, first = rows * cols, [ids.reshape(rows, cols)]
    else:
        ids, xs, ys, count, first = start.ids, start.xs, start.ys, start.count, []
    held_frames = list(first)
    for flow in cell_flows:
        held, ids, xs, ys, count = _carry_step(flow, ids, xs, ys, count, rows, cols)
        held_frames.append(held)
    return CarriedCells(np.stack(held_frames), count, prior_count=None if start is None else start.count,
                        end=(ids, xs, ys))


def _carry_step(flow: np.ndarray, ids, xs, ys, count: int, rows: int, cols: int):
    """One frame on: every particle moved along `flow` [rows, cols, 2]; returns the cells' particles [rows, cols]
    and the live particles (ids, true positions) and the id count after it."""
    motion = _bilinear(_regularised_flow(flow.astype(np.float64)), xs, ys)
    xs, ys = xs + motion[:, 0], ys + motion[:, 1]
    cx, cy = np.floor(xs + 0.5).astype(np.int64), np.floor(ys + 0.5).astype(np.int64)
    inside = (cx >= 0) & (cx < cols) & (cy >= 0) & (cy < rows)
    ids, xs, ys, cx, cy = ids[inside], xs[inside], ys[inside], cx[inside], cy[inside]
    cell = cy * cols + cx
    off_centre = (xs - cx) ** 2 + (ys - cy) ** 2
    order = np.lexsort((ids, off_centre, cell))  # by cell, then nearest the centre, then oldest
    _, first = np.unique(cell[order], return_index=True)
    winners = order[first]
    holder = np.full(rows * cols, -1, dtype=np.int64)  # cell -> index of the particle holding it
    holder[cell[winners]] = winners
    lost = np.setdiff1d(np.arange(len(ids)), winners, assume_unique=True)
    if len(lost):
        _place_losers(holder, lost, xs, ys, cx, cy, ids, rows, cols)
    occupied = np.flatnonzero(holder >= 0)
    keep = holder[occupied]
    ids, xs, ys = ids[keep], xs[keep], ys[keep]  # a placed loser keeps its true position
    held = np.full(rows * cols, -1, dtype=np.int64)
    held[occupied] = ids
    empty = np.flatnonzero(held < 0)
    newborn = np.arange(count, count + len(empty), dtype=np.int64)
    held[empty] = newborn
    ids = np.concatenate([ids, newborn])
    xs = np.concatenate([xs, (empty % cols).astype(np.float64)])
    ys = np.concatenate([ys, (empty // cols).astype(np.float64)])
    return held.reshape(rows, cols), ids, xs, ys, count + len(empty)


# Particle values are drawn in blocks of this many ids, each block from its own generator seeded by (seed, block):
# a particle's values depend on the seed and its id only, so a segment draws just the blocks its particles are in
# and gets the values one carry over the whole clip would give them.
VALUE_BLOCK = 4096


def _block_seed(seed: int, block: int) -> int:
    state = np.random.SeedSequence([seed, block]).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)


def particle_values(ids: np.ndarray, width: int, seed: int) -> torch.Tensor:
    """[len(ids), width] standard-normal values of the particles `ids` (any shape, flattened), from `seed`."""
    flat = np.asarray(ids, dtype=np.int64).ravel()
    blocks, where = np.unique(flat // VALUE_BLOCK, return_inverse=True)
    table = torch.cat([torch.randn((VALUE_BLOCK, width), generator=torch.Generator().manual_seed(
        _block_seed(seed, int(block)))) for block in blocks])
    return table[torch.from_numpy(where * VALUE_BLOCK + flat % VALUE_BLOCK)]


def carried_noise(carried: CarriedCells, channels: int, seed: int, cell: int = 1) -> torch.Tensor:
    """Noise [T, channels, rows * cell, cols * cell]: each particle's `channels * cell * cell` values (drawn from
    `seed` by its id: particle_values), put in its cell of every frame it holds one."""
    frames, rows, cols = carried.particles.shape
    per_cell = particle_values(carried.particles, channels * cell * cell, seed)
    per_cell = per_cell.reshape(frames, rows, cols, channels, cell, cell)
    return per_cell.permute(0, 3, 1, 4, 2, 5).reshape(frames, channels, rows * cell, cols * cell).contiguous()


def _one_per_cell(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fresh start: one particle per cell, ids in raster order, each at its cell's centre: (ids, xs, ys)."""
    grid_y, grid_x = np.mgrid[0:rows, 0:cols]
    return (np.arange(rows * cols, dtype=np.int64), grid_x.ravel().astype(np.float64),
            grid_y.ravel().astype(np.float64))


def still_cells(frames: int, rows: int, cols: int) -> CarriedCells:
    """Every cell keeps its particle in every frame: carried cells of a clip that never moves."""
    ids, xs, ys = _one_per_cell(rows, cols)
    return CarriedCells(np.repeat(ids.reshape(1, rows, cols), frames, axis=0), rows * cols, end=(ids, xs, ys))


def diptych_noise(mode: str, frames: int, channels: int, height: int, width: int, seed: int,
                  carried: CarriedCells | None = None, cell: int = 1) -> torch.Tensor:
    """Noise [frames, channels, height, width] for diptych latents (two panels side by side: `width` is two
    panels): latent_noise with two panels."""
    return latent_noise(mode, frames, channels, height, width, seed, carried, cell, panels=2)


def latent_noise(mode: str, frames: int, channels: int, height: int, width: int, seed: int,
                 carried: CarriedCells | None = None, cell: int = 1, panels: int = 1) -> torch.Tensor:
    """Noise [frames, channels, height, width] for latents of `panels` panels side by side (1: a whole image, as
    FLUX.1 Kontext and Qwen-Image-Edit edit a frame; 2: ICEdit's diptych) in the modes `shared` (one draw for all
    frames) and `flow` (carried along `carried`, the particles of one panel at the `cell` grid). The panels of a
    diptych show the same scene, so they carry along the same flow; their values are drawn apart, so no two
    elements of a frame share a value."""
    if panels < 1 or width % panels:
        raise ValueError(f"a latent of {panels} panel(s) side by side cannot be {width} wide")
    panel = width // panels
    if mode == SHARED:
        carried, cell = still_cells(frames, height, panel), 1
    elif mode == FLOW:
        if carried is None:
            raise ValueError("flow noise needs the particles carried along the source's flow")
        expected = (frames, height // cell, panel // cell)
        if carried.particles.shape != expected or height % cell or panel % cell:
            raise ValueError(f"the carried cells are {carried.particles.shape} (frames, rows, columns), but a "
                             f"{panel}x{height} latent panel of {frames} frames on {cell}x{cell} cells needs "
                             f"{expected}")
    else:
        raise ValueError(f"mode {mode!r}: latent_noise makes {SHARED!r} and {FLOW!r} noise")
    every = carried_noise(carried, panels * channels, seed, cell)
    return torch.cat([every[:, index * channels:(index + 1) * channels] for index in range(panels)], dim=3)
