/* Destructive actions (force deploy, roll back, disable a user, reset a password) ask first:
   a submit button with data-confirm="question" submits only once the question is accepted. */
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var button = ev.submitter;
    var question = button && button.dataset ? button.dataset.confirm : null;
    if (question && !window.confirm(question)) { ev.preventDefault(); }
  }, true);
})();
