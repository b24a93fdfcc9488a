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
