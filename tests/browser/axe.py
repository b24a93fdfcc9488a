"""axe-core in the page under test: its serious and critical WCAG 2.2 A/AA violations."""

from pathlib import Path

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def serious_violations(page) -> list[dict]:
    """Run axe on what the page shows now. Injected through DevTools (``evaluate``): the
    pages' Content-Security-Policy allows no injected ``<script>``."""
    page.evaluate(AXE.read_text())
    violations = page.evaluate("""async (tags) => {
        const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""", WCAG)
    return [v for v in violations if v["impact"] in ("serious", "critical")]
