"""The report page's stylesheet (inlined: the page loads nothing)."""

REFERENCE_COLOR = "#4c78a8"
CURRENT_COLOR = "#f58518"

CSS = f"""
body{{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
margin:0 auto;max-width:1180px;padding:16px 24px}}
h1{{font-size:22px;margin:0 0 8px}}h2{{font-size:17px;margin:22px 0 4px}}
a{{color:#1f5fa8}}.verdict{{display:inline-block;font-size:18px;font-weight:600;
padding:4px 12px;border-radius:6px;margin:0}}
.verdict.drift{{background:#fde2e1;color:#a61b1b}}.verdict.ok{{background:#dff3e4;color:#1d6b33}}
.verdict.warn{{background:#fff3cd;color:#7a5a00}}
dl.facts{{display:flex;flex-wrap:wrap;gap:6px 32px;margin:12px 0}}dl.facts dt{{font-size:12px;
color:#666}}dl.facts dd{{margin:0;font-size:19px;font-weight:600}}
.toc{{display:flex;flex-wrap:wrap;gap:8px 32px;align-items:flex-start}}
.toc p{{flex:1;min-width:300px;margin:4px 0}}
table{{border-collapse:collapse}}th,td{{padding:1px 10px 1px 0;text-align:left}}
table.counts td:last-child,table.stats td{{text-align:right;font-variant-numeric:tabular-nums}}
table.stats th{{text-align:right}}table.stats th:first-child{{text-align:left}}
tr.zero{{color:#999}}th{{font-weight:600;color:#555;font-size:12px}}
.legend{{color:#444;margin:8px 0}}.sw{{display:inline-block;width:12px;height:12px;
border-radius:2px;vertical-align:-1px;margin:0 4px 0 10px}}.legend .sw:first-child{{margin-left:0}}
.sw.ref{{background:{REFERENCE_COLOR}}}.sw.cur{{background:{CURRENT_COLOR}}}
.row{{display:grid;grid-template-columns:minmax(0,1fr) 86px 120px 84px 84px 84px 130px;
gap:8px;align-items:center;padding:4px 8px}}
.head{{font-size:12px;color:#666;border-bottom:1px solid #bbb}}
details.feature{{border-bottom:1px solid #e4e4e4}}summary{{cursor:pointer;list-style:none}}
summary::-webkit-details-marker{{display:none}}summary:hover{{background:#f6f8fa}}
.name{{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}}
.name::before{{content:"\\25B8\\00A0";color:#888}}
details[open] .name::before{{content:"\\25BE\\00A0"}}
.num{{text-align:right;font-variant-numeric:tabular-nums}}
.badge{{justify-self:start;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600}}
.badge.drift{{background:#c62828;color:#fff}}.badge.bad{{background:#6a1b9a;color:#fff}}
.badge.ok{{background:#e3efe6;color:#1d6b33}}.badge.warn{{background:#fff3cd;color:#7a5a00}}
.body{{display:flex;flex-wrap:wrap;gap:4px 28px;padding:2px 8px 12px 26px}}
.chart .legend{{margin:4px 0 0}}.notes{{flex:1;min-width:260px;max-width:560px;
color:#444;padding-top:8px}}.notes p{{margin:6px 0}}.note{{color:#555}}
table.stats{{margin:2px 0 6px}}
.plot .grid{{stroke:#e6e6e6}}.plot .axis{{stroke:#555;fill:none}}
.plot path.ref{{fill:{REFERENCE_COLOR}66;stroke:{REFERENCE_COLOR};stroke-width:1.2}}
.plot path.cur{{fill:{CURRENT_COLOR}55;stroke:{CURRENT_COLOR};stroke-width:1.5}}
.plot rect.ref{{fill:{REFERENCE_COLOR}}}.plot rect.cur{{fill:{CURRENT_COLOR}}}
.plot text{{font-size:11px;fill:#444}}.plot .xt,.plot .xl,.plot .yl{{text-anchor:middle}}
.plot .yt,.plot .yh{{text-anchor:end}}.plot .xl,.plot .yl,.plot .yh{{fill:#222;font-weight:600}}
.plot .other{{font-style:italic}}.plot .new{{fill:#b35900}}
h3{{font-size:15px;margin:14px 0 4px}}section.run{{border-bottom:1px solid #bbb;padding-bottom:8px}}
table.metrics td,table.quality td,table.cm td{{font-variant-numeric:tabular-nums}}
table.metrics td+td,table.quality td+td+td+td,table.cm td+td{{text-align:right}}
table.metrics th+th,table.quality th+th+th+th,table.cm th+th{{text-align:right}}
table.cm td,table.cm th{{padding:1px 8px;border:1px solid #e4e4e4}}
.cms{{display:flex;flex-wrap:wrap;gap:4px 32px}}.cm p{{margin:8px 0 2px;color:#444}}
.bad{{color:#a61b1b;font-weight:600}}
svg.band{{vertical-align:middle}}.band .track{{stroke:#bbb}}
.band .range{{fill:{CURRENT_COLOR}55}}.band .est{{stroke:{CURRENT_COLOR};stroke-width:2}}
.band .cur{{fill:#222}}
""".strip()
