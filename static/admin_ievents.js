// The admin's small helpers; every page works without them.
document.addEventListener("click", function (event) {
  const button = event.target.closest("button.copy-secret");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  input.select();
  const done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});

// A new payment integration: show the chosen provider's credentials only.
function showChosenProvider(select) {
  document.querySelectorAll("fieldset.provider-fields").forEach(function (fieldset) {
    fieldset.style.display = fieldset.classList.contains("provider-" + select.value) ? "" : "none";
  });
}
document.addEventListener("DOMContentLoaded", function () {
  const select = document.querySelector("#integrationsettings_form select#id_provider");
  if (!select) return;
  showChosenProvider(select);
  select.addEventListener("change", function () { showChosenProvider(select); });
});
