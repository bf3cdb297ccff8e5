// Site-wide behaviour, kept out of inline attributes so the Content-Security-Policy needs no exceptions.
document.addEventListener("change", function (event) {
  var target = event.target;
  if (target && target.matches && target.matches("select[data-autosubmit]")) {
    target.form.submit();
  }
});
