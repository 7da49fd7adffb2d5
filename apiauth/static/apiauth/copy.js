// Copy button for the once-shown key: no external dependency.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-apiauth-copy]");
  if (!button) return;
  var input = document.getElementById(button.getAttribute("data-apiauth-copy"));
  input.select();
  var done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});
