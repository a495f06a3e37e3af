// Connect POS: enqueue the sync, then follow it on its progress page.
"use strict";
document.getElementById("connect").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const message = document.getElementById("message");
  const restaurant = encodeURIComponent(form.get("restaurant"));
  const response = await fetch(`/api/restaurants/${restaurant}/connect-pos`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ posType: form.get("posType"), email: form.get("email") }),
  });
  const body = await response.json();
  if (!response.ok) {
    message.textContent = `Could not connect: ${JSON.stringify(body.detail ?? body)}`;
    return;
  }
  message.textContent = body.message;
  window.location.assign(body.progressPage);
});
