// Scroll the cited passage into view.
(function () {
  var mark = document.getElementById("cited-passage");
  if (mark && mark.textContent) { mark.scrollIntoView({block: "center"}); }
})();
