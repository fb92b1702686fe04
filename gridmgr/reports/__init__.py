"""Monthly evaluation reports (月度综合评价报告): what a director reads, as HTML or PDF.

``monthly.py`` gathers the numbers (through :mod:`gridmgr.evaluation`), ``charts.py`` draws
the choropleth and the trend charts, ``rendering.py`` fills the template and prints the PDF,
``cli.py`` is ``gridmgr report``.
"""
