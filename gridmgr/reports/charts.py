"""The report's figures as SVG text: the grids' choropleth and the trend charts.

Drawn with matplotlib's object API (no pyplot state, safe in a server); text is turned into
outlines in the SVG, so the Chinese labels look the same wherever the file is opened.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import geopandas
import matplotlib
from matplotlib import font_manager, patheffects
from matplotlib.figure import Figure

matplotlib.use("Agg")

# The first of these that is installed draws the labels (Debian: fonts-noto-cjk).
CJK_FONTS = ("Noto Sans CJK SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Source Han Sans SC",
             "Noto Sans SC", "SimHei", "Microsoft YaHei")
COLOURS = {"reported": "#2b6cb0", "closed": "#2f855a", "closing_rate": "#2f855a",
           "closed_on_time_rate": "#dd6b20", "handled_on_time_rate": "#805ad5"}


@lru_cache(maxsize=1)
def font_family() -> list[str]:
    """The installed CJK font to draw with, then DejaVu Sans for anything else."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return [name for name in CJK_FONTS if name in installed][:1] + ["DejaVu Sans"]


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _style():
    return matplotlib.rc_context({"font.family": font_family(), "font.size": 9,
                                  "axes.spines.top": False, "axes.spines.right": False,
                                  "svg.fonttype": "path", "svg.hashsalt": "gridmgr"})


def choropleth(grids: list[dict], outlines: list[dict], value: str, legend: str) -> str:
    """Each grid shaded by ``grids[i][value]`` (0 is the palest), with the ranked regions'
    outlines and names over them."""
    shapes = [item["shape"] for item in grids or outlines]
    with _style():
        figure = Figure(layout="constrained", figsize=(7.2, _map_height(shapes)))
        axes = figure.add_subplot()
        axes.set_axis_off()
        if grids:
            frame = geopandas.GeoDataFrame(
                {"value": [g[value] for g in grids]},
                geometry=[g["shape"] for g in grids], crs="EPSG:4326")
            top = max(1, int(frame["value"].max()))
            frame.plot(column="value", cmap="OrRd", vmin=0, vmax=top, ax=axes,
                       edgecolor="#ffffff", linewidth=0.15, legend=True,
                       legend_kwds={"label": legend, "shrink": 0.6, "format": "%d",
                                    "ticks": _integer_ticks(top)})
        if outlines:
            borders = geopandas.GeoDataFrame(
                {"name": [o["name"] for o in outlines]},
                geometry=[o["shape"] for o in outlines], crs="EPSG:4326")
            borders.boundary.plot(ax=axes, color="#333333", linewidth=0.6)
            if len(outlines) <= 40:
                for name, point in zip(borders["name"],
                                       borders.geometry.representative_point(), strict=True):
                    axes.annotate(name, (point.x, point.y), ha="center", va="center",
                                  fontsize=6.5, color="#1a202c", path_effects=[
                                      patheffects.withStroke(linewidth=2, foreground="white")])
        if shapes:
            axes.set_aspect(1 / math.cos(math.radians(shapes[0].centroid.y)))
        return _svg(figure)


def _map_height(shapes: list) -> float:
    """Inches for a 7.2 in wide map of ``shapes`` (with room for the colour bar), 3 to 8."""
    if not shapes:
        return 3.0
    west, south, east, north = geopandas.GeoSeries(shapes).total_bounds
    wide = (east - west) * math.cos(math.radians((south + north) / 2)) or 1e-9
    return min(8.0, max(3.0, 6.2 * (north - south) / wide + 0.3))


def _integer_ticks(top: int) -> list[int]:
    step = max(1, math.ceil(top / 6))
    return list(range(0, top + 1, step))


def daily_flow(days: list, reported: list[int], closed: list[int], labels: dict) -> str:
    """Bars of cases reported per day, a line of cases closed per day."""
    with _style():
        figure = Figure(layout="constrained", figsize=(7.2, 2.6))
        axes = figure.add_subplot()
        positions = range(len(days))
        axes.bar(positions, reported, color=COLOURS["reported"], alpha=0.75,
                 label=labels["reported"])
        axes.plot(positions, closed, color=COLOURS["closed"], marker="o", markersize=2.5,
                  linewidth=1.4, label=labels["closed"])
        axes.set_xticks(list(positions)[::2], [f"{d.day}" for d in days][::2])
        axes.set_xlabel(labels["day"])
        axes.set_ylim(0, max(1, *reported, *closed) * 1.15)
        axes.yaxis.get_major_locator().set_params(integer=True)
        axes.legend(frameon=False, loc="upper left", ncols=2)
        return _svg(figure)


def monthly_rates(months: list[str], series: dict[str, list[float | None]],
                  reported: list[int], labels: dict) -> str:
    """Each month's rates (%) as lines over its reported cases as grey bars."""
    with _style():
        figure = Figure(layout="constrained", figsize=(7.2, 2.8))
        bars = figure.add_subplot()
        positions = range(len(months))
        bars.bar(positions, reported, color="#cbd5e0", label=labels["reported"])
        bars.set_ylabel(labels["reported"])
        bars.set_ylim(0, max(1, *reported) * 1.1)
        bars.yaxis.get_major_locator().set_params(integer=True)
        lines = bars.twinx()
        lines.spines["right"].set_visible(True)
        for name, values in series.items():
            lines.plot(positions, [math.nan if v is None else 100 * v for v in values],
                       marker="o", markersize=3, linewidth=1.4, color=COLOURS[name],
                       label=labels[name])
        lines.set_ylim(0, 105)
        lines.set_ylabel("%")
        bars.set_xticks(list(positions), months)
        handles = [*bars.get_legend_handles_labels()[0], *lines.get_legend_handles_labels()[0]]
        names = [*bars.get_legend_handles_labels()[1], *lines.get_legend_handles_labels()[1]]
        lines.legend(handles, names, frameon=False, loc="lower left", ncols=4, fontsize=7.5)
        return _svg(figure)
