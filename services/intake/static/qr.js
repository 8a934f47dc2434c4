// The QR form: send to the JSON API with an idempotency key, show the tracking code.
// Without JavaScript the form posts to the page itself and the server does the same.
// When the station is guarded (under attack), the server asks for a proof-of-work: a
// nonce such that SHA-256(challenge || nonce) starts with `difficulty` zero bits, found
// here with WebCrypto before sending (the challenge comes from the page's station or
// from the refusal itself, when the guard switched on after the page was drawn).
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

  function zeroBits(bytes) {
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { bits += 8; continue; }
      var b = bytes[i];
      while ((b & 0x80) === 0) { bits++; b <<= 1; }
      break;
    }
    return bits;
  }

  // Hashes a batch at a time: WebCrypto answers with promises, and many in flight at
  // once cost far less than one after the other.
  function solve(challenge, difficulty) {
    var encoder = new TextEncoder(), batch = 256, start = 0;
    function round() {
      var jobs = [];
      for (var i = 0; i < batch; i++) {
        jobs.push(window.crypto.subtle.digest("SHA-256", encoder.encode(challenge + String(start + i))));
      }
      return Promise.all(jobs).then(function (digests) {
        for (var j = 0; j < digests.length; j++) {
          if (zeroBits(new Uint8Array(digests[j])) >= difficulty) return String(start + j);
        }
        start += batch;
        return round();
      });
    }
    return round();
  }

  function proofFor(c) {
    if (!c || !c.challenge) return Promise.resolve(null);
    if (!window.crypto || !window.crypto.subtle || !window.TextEncoder) {
      return Promise.reject(new Error("no-crypto"));
    }
    send.textContent = d.checking;
    return solve(c.challenge, c.difficulty).then(function (nonce) {
      send.textContent = d.submitting;
      return c.challenge + ":" + nonce;
    });
  }

  function stationChallenge() {
    if (!d.pow || d.pow === "0") return Promise.resolve(null);
    var url = "/api/v1/stations/" + encodeURIComponent(d.station) + "/challenge?district=" +
      encodeURIComponent(d.district);
    return fetch(url, { headers: { "Accept": "application/json" } }).then(function (response) {
      return response.ok ? response.json() : null;
    });
  }

  function post(body, proof) {
    var headers = { "Content-Type": "application/json", "Idempotency-Key": d.idempotencyKey };
    if (proof) headers["Proof-Of-Work"] = proof;
    return fetch("/api/v1/opinions", {
      method: "POST", headers: headers, body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    });
  }

  // A refusal carrying a challenge (the guard asks, or the proof was stale): solve it
  // and send once more.
  function postWithProof(body) {
    return stationChallenge().then(proofFor).then(function (proof) {
      return post(body, proof);
    }).then(function (result) {
      if (result.ok || !result.data || !result.data.challenge) return result;
      return proofFor(result.data).then(function (proof) { return post(body, proof); });
    });
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
    postWithProof(body).then(function (result) {
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
    }).catch(function (error) {
      if (error && error.message === "no-crypto") { showErrors([d.noCrypto]); return; }
      showErrors([zh ? "网络不通，请稍后重试（内容不会重复提交）" : "Network error: retry later (nothing is sent twice)"]);
    }).then(function () { send.disabled = false; send.textContent = d.submit; });
  });
})();
