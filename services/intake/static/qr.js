// The QR form: send to the JSON API with an idempotency key, show the tracking code.
// Without JavaScript the form posts to the page itself and the server does the same.
(function () {
  "use strict";
  var form = document.getElementById("opinion");
  if (!form || !window.fetch) return;
  var d = form.dataset;
  var text = document.getElementById("text");
  var count = document.getElementById("count");
  var send = document.getElementById("send");
  var errors = document.getElementById("errors");

  function updateCount() { count.textContent = String(text.value.trim().length); }
  text.addEventListener("input", updateCount);
  updateCount();

  var locate = document.getElementById("locate");
  var located = document.getElementById("located");
  if (navigator.geolocation && locate) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (pos) {
        // Browsers report WGS84, which is what the API expects.
        document.getElementById("lat").value = pos.coords.latitude.toFixed(6);
        document.getElementById("long").value = pos.coords.longitude.toFixed(6);
        located.textContent = d.located; located.hidden = false;
      }, function () { located.textContent = d.locateFailed; located.hidden = false; },
      { enableHighAccuracy: true, timeout: 10000 });
    });
  }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return String(Date.now()) + "-" + String(Math.random()).slice(2);
  }

  function value(id) { var el = document.getElementById(id); return el && el.value.trim() ? el.value.trim() : null; }

  function showErrors(messages) {
    var list = errors.querySelector("ul");
    list.innerHTML = "";
    messages.forEach(function (m) { var li = document.createElement("li"); li.textContent = m; list.appendChild(li); });
    errors.hidden = false;
    errors.scrollIntoView({ behavior: "smooth", block: "center" });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var zh = d.lang !== "en";
    var lat = value("lat"), lng = value("long");
    var body = {
      channel: "qr", station_code: d.station, district: d.district, text: text.value,
      category_hint: value("category"),
      location: { community: value("community"), address: value("address"),
                  lat: lat ? Number(lat) : null, long: lng ? Number(lng) : null },
      consent: document.getElementById("consent").checked
    };
    var name = value("name"), phone = value("phone");
    if (name || phone) body.contact = { name: name, phone: phone };
    send.disabled = true; send.textContent = d.submitting; errors.hidden = true;
    fetch("/api/v1/opinions", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": d.idempotencyKey },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      if (result.ok) {
        document.getElementById("result-code").textContent = result.data.tracking_code;
        var link = "/t/" + result.data.tracking_code.replace(/-/g, "") + (zh ? "" : "?lang=en");
        document.getElementById("result-link").setAttribute("href", link);
        form.hidden = true;
        var panel = document.getElementById("result");
        panel.hidden = false;
        panel.scrollIntoView({ behavior: "smooth" });
        return;
      }
      // Refused: nothing was stored, so the corrected form is a new submission.
      d.idempotencyKey = newKey();
      var p = result.data, messages = [];
      (p.errors || []).forEach(function (e) { messages.push(zh ? e.message : e.message_en); });
      if (!messages.length) messages.push(zh ? (p.detail || p.title) : (p.detail_en || p.title_en));
      showErrors(messages);
    }).catch(function () {
      showErrors([zh ? "网络不通，请稍后重试（内容不会重复提交）" : "Network error: retry later (nothing is sent twice)"]);
    }).then(function () { send.disabled = false; send.textContent = d.submit; });
  });
})();
