"""Steps in the Django admin that several browser stories take."""

from tests.conftest import ORGANIZER_PASSWORD


def log_in(page, username="ana", password=ORGANIZER_PASSWORD, *, shot=None):
    """The admin's sign-in form, in any language (the fields are found by name); ``shot``
    photographs the filled form before it is sent."""
    page.goto("/admin/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    if shot:
        shot("login")
    page.locator("input[type=submit]").click()


def choose_organization(page, organization):
    """An organizer of several organizations picks one; of one, it is chosen for them (hidden)."""
    choice = page.locator("select[name=organization]")
    if choice.count():
        choice.select_option(label=organization.name)


def secret_shown_once(page) -> str:
    """The secret in the "copy it now" box the admin shows once; then on to the next page."""
    secret = page.locator("input.secret-value").first.input_value()
    page.get_by_role("link", name="I have copied it — continue").click()
    return secret


def fill_new_event(page, organization, *, name="Porto Data Night", name_pt="", ticket_pt=""):
    """On the event add form: the event's fields and one ticket type (Standard, 15.00, 40);
    ``name_pt`` and ``ticket_pt``: the Portuguese texts beside the English ones."""
    choose_organization(page, organization)
    page.get_by_label("Name in English:").fill(name)
    if name_pt:
        page.get_by_label("Name in Portuguese:").fill(name_pt)
    page.locator("input[name=starts_at_0]").fill("2030-05-17")
    page.locator("input[name=starts_at_1]").fill("19:30:00")
    page.get_by_label("Venue:").fill("Alfândega do Porto")
    page.get_by_text("Add another Ticket type").click()
    row = page.locator("tr.form-row.dynamic-ticket_types").first
    row.locator("input[name$=-name_en]").fill("Standard")
    if ticket_pt:
        row.locator("input[name$=-name_pt_pt]").fill(ticket_pt)
    row.locator("input[name$=-price]").fill("15.00")
    row.locator("input[name$=-quantity]").fill("40")
