// The add page of a signing key: the RSA key size only shows when RSA is chosen.
document.addEventListener("DOMContentLoaded", function () {
  var algorithm = document.getElementById("id_algorithm");
  var row = document.querySelector(".field-key_size");
  if (!algorithm || !row) return;
  var sync = function () { row.hidden = algorithm.value !== "RS256"; };
  algorithm.addEventListener("change", sync);
  sync();
});
