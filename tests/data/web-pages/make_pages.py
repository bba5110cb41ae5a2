# ruff: noqa: E501  (page markup reads best on one line)
"""Writes the saved web pages of this folder and, beside each, the article text a reader
expects from it (``NAME.expected.txt``: the headline, the byline, then each paragraph, list item
or table row on a line of its own). Twenty site shapes: menus, cookie and newsletter banners,
share bars, related lists, most-read sidebars, comments, author boxes, tag lists, ads, paywall
prompts, breadcrumbs, page footers, pages without <article> or <main>.

Run again after changing it: ``python tests/data/web-pages/make_pages.py``. Deterministic.
"""

from __future__ import annotations

import html
import random
from pathlib import Path

HERE = Path(__file__).parent

SENTENCES = [
    "The ministry said the new licence rule would apply to shipments leaving after 1 March.",
    "Officials expect roughly 40 applications in the first quarter, most from equipment makers.",
    "Exporters that already hold a permit may keep shipping until it expires.",
    "The regulator published a 62-page guidance note alongside the decision.",
    "Industry groups warned that the deadline leaves little time to adjust supply contracts.",
    "The finance committee approved the budget by 31 votes to 9 on Tuesday evening.",
    "Spending on grid upgrades will rise to 4.2 billion euros over the next three years.",
    "The operator plans to connect the first offshore turbines in the spring of 2027.",
    "Analysts at two banks cut their forecasts after the company lowered its margin guidance.",
    "The agency estimated that demand from data centres could double by the end of the decade.",
    "Court filings show the two sides met three times before talks broke down in June.",
    "A spokesperson declined to say whether the company would appeal the ruling.",
    "The tariff is set at 17.4 percent for the largest producer and 38.1 percent for others.",
    "Under the draft, platforms would have 24 hours to remove content flagged by a court.",
    "The central bank kept its main rate at 3.75 percent, in line with expectations.",
    "Port authorities reported that container volumes fell 6 percent year on year.",
    "The treaty enters into force once 60 countries have ratified it.",
    "Engineers found corrosion on two of the seven support columns during the inspection.",
    "The company said the plant would employ about 1,200 people at full capacity.",
    "Lawmakers added an amendment exempting small firms with fewer than 50 staff.",
    "The survey of 2,300 households found that heating costs had risen for most of them.",
    "Prosecutors said the fraud ran for at least four years before it was detected.",
    "The satellite is due to launch from French Guiana in the second half of 2026.",
    "Health officials recorded 214 cases in the outbreak, nearly all in the northern districts.",
    "The deal values the start-up at about 2.8 billion dollars including debt.",
    "Farmers' unions called the quota cut a breach of the government's earlier promise.",
    "Water levels in the reservoir dropped to 41 percent of capacity in August.",
    "The airline will retire its last four older jets by the end of next year.",
    "A pilot scheme in three cities will test the new payment system from October.",
    "The audit office said two thirds of the projects were behind schedule.",
    "Electricity prices on the day-ahead market briefly turned negative on Sunday afternoon.",
    "The university received a record 18,500 applications for the autumn intake.",
    "Negotiators agreed to meet again in Geneva in the first week of December.",
    "The fund's assets grew to 312 billion dollars, helped by strong equity returns.",
    "Inspectors will visit every licensed warehouse at least once a year under the plan.",
    "The mayor said the bridge would reopen to buses before the end of the month.",
    "Imports of solar panels rose sharply ahead of the new duties taking effect.",
    "The committee's report runs to 140 pages and makes 23 recommendations.",
    "Rail freight volumes recovered to pre-pandemic levels for the first time.",
    "The company's chief executive will step down after nine years in the role.",
]

HEADLINES = [
    "Ministry tightens licences for equipment exports", "Budget vote clears the way for grid upgrades",
    "Offshore wind operator sets connection date", "Data-centre demand could double, agency says",
    "Talks collapse after months of court filings", "New tariffs announced on imported vehicles",
    "Draft law sets 24-hour removal deadline", "Central bank holds rates steady",
    "Container volumes fall at the main port", "Pandemic treaty awaits ratifications",
    "Inspection finds corrosion on bridge columns", "New plant to employ 1,200 people",
    "Household survey shows heating costs rising", "Satellite launch slips to late 2026",
    "Outbreak reaches 214 cases in the north", "Start-up valued at 2.8 billion dollars",
    "Farmers protest quota cut", "Reservoir falls to 41 percent", "Pilot payment scheme in three cities",
    "Audit office finds projects behind schedule",
]

CHROME = {
    "nav": '<nav class="site-nav"><ul><li><a href="/">Home</a></li><li><a href="/world">World desk</a>'
           '</li><li><a href="/markets">Markets desk</a></li><li><a href="/opinion">Opinion pages</a>'
           '</li><li><a href="/subscribe">Subscribe today</a></li></ul></nav>',
    "topbar": '<div class="top-bar">Breaking news alerts · Get the app · Houston weather 31°C</div>',
    "cookie": '<div id="cookie-consent" class="cookie-banner"><p>We use cookies to personalise '
              'content and ads and to analyse our traffic. By clicking accept you agree to our use '
              'of cookies.</p><button>Accept all cookies</button><button>Manage preferences'
              '</button></div>',
    "breadcrumb": '<div class="breadcrumb"><a href="/">Home</a> › <a href="/policy">Policy</a> › '
                  'Current story</div>',
    "share": '<div class="share-bar"><span>Share this story</span> <a href="#">Share on X</a> '
             '<a href="#">Share on Facebook</a> <a href="#">Share on LinkedIn</a> '
             '<a href="#">Email a friend</a></div>',
    "newsletter": '<div class="newsletter-signup"><h3>Get our morning briefing</h3><p>Sign up for '
                  'the free newsletter delivered to your inbox every weekday at 6am.</p><form>'
                  '<input type="email" placeholder="Your email address"><button>Sign up now'
                  '</button></form></div>',
    "related": '<section class="related-stories"><h2>Related stories</h2><ul><li><a href="/a">'
               'Pension reform stalls in upper house committee</a></li><li><a href="/b">Five '
               'charts that explain the housing slump</a></li><li><a href="/c">Why shipping '
               'insurers are raising premiums again</a></li></ul></section>',
    "mostread": '<aside class="sidebar"><h3>Most read</h3><ol><li><a href="/1">Celebrity chef '
                'opens rooftop restaurant downtown</a></li><li><a href="/2">Ten hiking trails '
                'for the long weekend</a></li><li><a href="/3">Local team wins cup final on '
                'penalties</a></li></ol></aside>',
    "ad": '<div class="ad-slot"><span>Advertisement</span><p>Refinance your mortgage today with '
          'rates from 2.9% APR. Terms apply.</p></div>',
    "comments": '<section id="comments"><h2>Comments (12)</h2><div class="comment"><p><b>reader42'
                '</b> wrote: This is a disgrace, the whole thing should be scrapped.</p></div>'
                '<div class="comment"><p><b>jm_smith</b> wrote: Great reporting as always, thank '
                'you.</p></div></section>',
    "authorbox": '<div class="author-bio"><p>Maria Lindqvist covers trade and industry for the '
                 'paper. She previously worked as a correspondent in Brussels.</p><a href="/'
                 'authors/ml">More from this author</a></div>',
    "tags": '<div class="tags">Filed under: <a href="/t/trade">trade</a>, <a href="/t/policy">'
            'policy</a>, <a href="/t/industry">industry</a></div>',
    "paywall": '<div class="paywall-prompt"><p>You have read 3 of your 5 free articles this '
               'month. Subscribe for unlimited access from 1 euro a week.</p></div>',
    "footer": '<footer class="site-footer"><p>© 2026 The Daily Ledger Media Group. All rights '
              'reserved.</p><p><a href="/privacy">Privacy policy</a> · <a href="/terms">Terms of '
              'use</a> · <a href="/contact">Contact us</a> · <a href="/careers">Careers</a></p>'
              '</footer>',
}

BYLINES = [
    '<p class="byline">By Maria Lindqvist · Stockholm · 2 January 2026</p>',
    '<div class="dateline">Published 14 March 2026, 09:30 CET</div>',
    '<p class="byline">By staff reporters, Rotterdam. Updated 5 May 2026</p>',
    '<address class="author">By Tom Okafor, energy correspondent</address>',
    '<span itemprop="author">Priya Raman</span>',
    "",
]

SHAPES = [
    # (chrome before, chrome inside article top, chrome after paragraphs, chrome after article,
    #  wrapper, extras)
    (["nav"], [], ["share"], ["related", "footer"], "article", ""),
    (["topbar", "nav"], [], [], ["footer"], "article", ""),
    (["cookie", "nav"], ["share"], [], ["mostread", "footer"], "main-article", ""),
    (["nav", "breadcrumb"], [], ["tags"], ["comments", "footer"], "article", ""),
    (["cookie"], [], ["newsletter"], ["related", "footer"], "div", ""),
    (["nav"], [], ["authorbox"], ["mostread", "footer"], "article", "list"),
    (["topbar"], [], ["share", "tags"], ["footer"], "main", "table"),
    (["nav", "cookie"], [], [], ["ad", "related", "footer"], "article", "subheads"),
    (["nav"], ["ad"], [], ["comments", "footer"], "div", ""),
    (["breadcrumb"], [], ["paywall"], ["footer"], "article", ""),
    (["nav", "topbar"], [], ["newsletter", "share"], ["mostread", "footer"], "main-article", "list"),
    (["cookie", "breadcrumb"], [], [], ["related", "comments", "footer"], "article", "subheads"),
    (["nav"], ["share"], ["share"], ["footer"], "div", "table"),
    (["nav"], [], ["tags", "authorbox"], ["related", "footer"], "article", "quote"),
    ([], [], [], ["footer"], "article", ""),
    (["nav", "cookie", "topbar"], [], ["share"], ["mostread", "related", "footer"], "article",
     "subheads"),
    (["nav"], [], [], ["ad", "footer"], "main", "list"),
    (["breadcrumb", "nav"], [], ["newsletter"], ["comments", "footer"], "div", "quote"),
    (["nav"], [], ["paywall"], ["related", "footer"], "main-article", ""),
    (["topbar", "cookie"], ["share"], ["authorbox", "tags"], ["mostread", "footer"], "article",
     "table"),
]


def page(i: int) -> tuple[str, list[str]]:
    rng = random.Random(i)
    before, top, after_paras, after, wrapper, extra = SHAPES[i]
    headline = HEADLINES[i]
    byline = BYLINES[i % len(BYLINES)]
    pool = SENTENCES[:]
    rng.shuffle(pool)
    paras = [" ".join(pool[k:k + rng.choice((2, 3))]) for k in range(0, 15, 3)]
    expected = [headline]
    body: list[str] = [f"<h1>{html.escape(headline)}</h1>"]
    if byline:
        body.append(byline)
        inner = byline.split(">", 1)[1].rsplit("<", 1)[0]
        expected.append(html.unescape(inner))
    body += [CHROME[c] for c in top]
    for k, p in enumerate(paras):
        if extra == "subheads" and k == 2:
            body.append("<h2>What happens next</h2>")
            expected.append("What happens next")
        body.append(f"<p>{html.escape(p)}</p>")
        expected.append(p)
        if k == 1 and extra == "list":
            items = ["Exporters must register by 1 March.", "Permits last for two years.",
                     "Fees rise to 450 euros per application."]
            body.append("<ul>" + "".join(f"<li>{x}</li>" for x in items) + "</ul>")
            expected += items
        if k == 1 and extra == "table":
            rows = [("Region", "Capacity", "Start"), ("North Sea", "1.4 GW", "2027"),
                    ("Baltic", "0.9 GW", "2028")]
            body.append("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in rows[0])
                        + "</tr></thead><tbody>" + "".join(
                            "<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>"
                            for r in rows[1:]) + "</tbody></table>")
            expected += [" ".join(r) for r in rows]
        if k == 2 and extra == "quote":
            q = "We will not accept a deal that leaves our workers behind, the union leader said."
            body.append(f"<blockquote><p>{q}</p></blockquote>")
            expected.append(q)
    body += [CHROME[c] for c in after_paras]
    content = "\n".join(body)
    if wrapper == "article":
        main = f"<main>\n<article>\n{content}\n</article>\n{''.join(CHROME[c] for c in after if c != 'footer')}\n</main>"
    elif wrapper == "main":
        main = f"<main>\n{content}\n</main>\n{''.join(CHROME[c] for c in after if c != 'footer')}"
    elif wrapper == "main-article":
        main = (f'<div class="layout"><div class="main-column"><article class="story">\n{content}'
                f'\n</article></div>{"".join(CHROME[c] for c in after if c != "footer")}</div>')
    else:
        main = (f'<div id="wrapper"><div class="content"><div class="post-body">\n{content}\n'
                f'</div></div><div class="extras">'
                f'{"".join(CHROME[c] for c in after if c != "footer")}</div></div>')
    doc = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>'
           f'{html.escape(headline)} | The Daily Ledger</title>\n<script>var ads = [];</script>\n'
           f'</head>\n<body>\n<header class="masthead"><a class="logo" href="/">The Daily Ledger'
           f'</a>{"".join(CHROME[c] for c in before)}</header>\n{main}\n'
           f'{CHROME["footer"] if "footer" in after else ""}\n</body>\n</html>\n')
    return doc, expected


def main() -> None:
    for i in range(len(SHAPES)):
        doc, expected = page(i)
        name = f"page-{i + 1:02d}"
        (HERE / f"{name}.html").write_text(doc, encoding="utf-8")
        (HERE / f"{name}.expected.txt").write_text("\n".join(expected) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
