// A frontend on another origin, talking to the SMS notification API.
//
// What a frontend needs, in order:
// 1. CSRF: Django wants the X-CSRFToken header on every POST. This page cannot
//    read the API's csrftoken cookie when the API is on another host, so it gets
//    the token from GET /graphql/csrf/ and then keeps the token that every
//    /graphql/ response repeats in its X-CSRFToken header: login rotates it.
// 2. Cookies: fetch with credentials: "include"; the API lists this page's origin
//    in DJANGO_CORS_ALLOWED_ORIGINS (make run does this for http://127.0.0.1:3000).
// 3. Live status: graphql-ws (graphql-transport-ws) on ws(s)://<api>/graphql/; the
//    browser sends the session cookie with the handshake. smsStatus first sends
//    each notification's current status, then every change.
(function () {
  "use strict";

  const API = (new URLSearchParams(location.search).get("api") || "http://127.0.0.1:8000")
    .replace(/\/+$/, "");
  const GRAPHQL_URL = API + "/graphql/";
  const WEBSOCKET_URL = GRAPHQL_URL.replace(/^http/, "ws");
  const ENCODING_NAMES = { GSM7: "GSM-7", UCS2: "UCS-2" };
  const STATUS_FIELDS = "notificationId status deliveryStatus errorCode errorMessage at";

  let csrfToken = null;
  let socket = null;
  let stopWatching = () => {};
  const rows = new Map(); // notification id -> <tr>

  const $ = (id) => document.getElementById(id);

  // --- HTTP ----------------------------------------------------------------------

  async function fetchCsrfToken() {
    const response = await fetch(GRAPHQL_URL + "csrf/", { credentials: "include" });
    csrfToken = (await response.json()).csrfToken;
  }

  async function graphql(query, variables) {
    if (!csrfToken) {
      await fetchCsrfToken();
    }
    const response = await fetch(GRAPHQL_URL, {
      method: "POST",
      credentials: "include",
      headers: { "content-type": "application/json", "x-csrftoken": csrfToken },
      body: JSON.stringify({ query: query, variables: variables || {} }),
    });
    csrfToken = response.headers.get("x-csrftoken") || csrfToken;
    if (!response.ok) {
      // Django's CSRF refusal is an HTML page: never parse it as JSON.
      throw new Error("The API answered HTTP " + response.status + ".");
    }
    const result = await response.json();
    if (result.errors && result.errors.length) {
      throw new Error(result.errors.map((error) => error.message).join(" "));
    }
    return result.data;
  }

  function showError(error) {
    $("error").textContent = error ? String(error.message || error) : "";
    $("error").hidden = !error;
  }

  // --- login / logout -------------------------------------------------------------

  async function login(event) {
    event.preventDefault();
    showError(null);
    try {
      const data = await graphql(
        "mutation Login($u: String!, $p: String!) { login(username: $u, password: $p) { username } }",
        { u: $("username").value, p: $("password").value },
      );
      await start(data.login.username);
    } catch (error) {
      showError(error);
    }
  }

  async function logout() {
    showError(null);
    try {
      await graphql("mutation { logout }");
    } catch (error) {
      showError(error);
    }
    stop();
  }

  async function start(username) {
    $("who").textContent = "Logged in as " + username;
    $("login-form").hidden = true;
    $("logout").hidden = false;
    $("app").hidden = false;
    // The handshake carries the session cookie set by login: open it only now.
    socket = graphqlWs.createClient({ url: WEBSOCKET_URL, retryAttempts: 5 });
    await loadNotifications();
    updateCounter();
  }

  function stop() {
    stopWatching();
    if (socket) {
      socket.dispose();
      socket = null;
    }
    rows.clear();
    $("notifications").replaceChildren();
    $("who").textContent = "Not logged in";
    $("login-form").hidden = false;
    $("logout").hidden = true;
    $("app").hidden = true;
  }

  // --- the segment counter ----------------------------------------------------------

  let counterRequest = 0;
  let counterTimer = null;

  function updateCounter() {
    clearTimeout(counterTimer);
    counterTimer = setTimeout(async () => {
      const request = ++counterRequest;
      try {
        const data = await graphql(
          "query Count($body: String!) { smsSegments(body: $body) " +
            "{ encoding segments characters charactersPerSegment } }",
          { body: $("body").value },
        );
        if (request === counterRequest) {
          showCounter(data.smsSegments);
        }
      } catch (error) {
        if (request === counterRequest) {
          $("counter").textContent = error.message;
        }
      }
    }, 150);
  }

  function showCounter(count) {
    const capacity = count.charactersPerSegment * Math.max(count.segments, 1);
    $("counter").textContent =
      ENCODING_NAMES[count.encoding] + " · " + count.segments +
      (count.segments === 1 ? " segment" : " segments") + " · " +
      count.characters + "/" + capacity;
    $("counter").className = count.encoding.toLowerCase();
    $("counter").dataset.encoding = count.encoding;
  }

  // --- create -------------------------------------------------------------------------

  async function create(event) {
    event.preventDefault();
    showError(null);
    $("field-errors").replaceChildren();
    try {
      const data = await graphql(
        "mutation Create($input: CreateSmsNotificationInput!) { createSmsNotification(input: $input) " +
          "{ notification { " + NOTIFICATION_FIELDS + " } errors { field message } } }",
        { input: { title: $("title").value, body: $("body").value, toPhoneNumber: $("to").value } },
      );
      const payload = data.createSmsNotification;
      if (payload.errors.length) {
        $("field-errors").replaceChildren(
          ...payload.errors.map((error) => {
            const item = document.createElement("li");
            item.textContent = (error.field ? error.field + ": " : "") + error.message;
            return item;
          }),
        );
        return;
      }
      addRow(payload.notification, true);
      watch();
      $("compose").reset();
      updateCounter();
    } catch (error) {
      showError(error);
    }
  }

  // --- the live list --------------------------------------------------------------------

  const NOTIFICATION_FIELDS =
    "id title status createdDatetime sms { toPhoneNumber deliveryStatus statusUpdatedDatetime }";

  async function loadNotifications() {
    const data = await graphql(
      "query { notifications(pagination: {offset: 0, limit: 50}) { results { " +
        NOTIFICATION_FIELDS + " } } }",
    );
    data.notifications.results.forEach((notification) => addRow(notification, false));
    watch();
  }

  function addRow(notification, atTop) {
    const row = document.createElement("tr");
    row.dataset.id = notification.id;
    for (const name of ["id", "title", "to", "status", "delivery", "at"]) {
      const cell = document.createElement("td");
      cell.className = name;
      row.append(cell);
    }
    row.querySelector(".id").textContent = notification.id;
    row.querySelector(".title").textContent = notification.title;
    row.querySelector(".to").textContent = notification.sms ? notification.sms.toPhoneNumber : "";
    rows.set(notification.id, row);
    showStatus(row, {
      status: notification.status,
      deliveryStatus: notification.sms ? notification.sms.deliveryStatus : "NOT_SUBMITTED",
      at: (notification.sms && notification.sms.statusUpdatedDatetime) ||
        notification.createdDatetime,
    });
    if (atTop) {
      $("notifications").prepend(row);
    } else {
      $("notifications").append(row);
    }
  }

  function showStatus(row, event) {
    row.dataset.status = event.status;
    row.dataset.delivery = event.deliveryStatus;
    row.querySelector(".status").textContent = event.status;
    row.querySelector(".delivery").textContent =
      event.deliveryStatus + (event.errorCode ? " (" + event.errorCode + ")" : "");
    // The API's times carry a UTC offset, so this is the reader's local time.
    row.querySelector(".at").textContent = event.at ? new Date(event.at).toLocaleString() : "";
  }

  // One smsStatus subscription for every listed notification (at most 100 per
  // subscription), replaced when the list grows. Its first events are the current
  // statuses: a row is marked live once the server is watching it.
  function watch() {
    stopWatching();
    const ids = Array.from(rows.keys()).slice(0, 100);
    if (!socket || !ids.length) {
      stopWatching = () => {};
      return;
    }
    stopWatching = socket.subscribe(
      {
        query: "subscription Watch($ids: [ID!]) { smsStatus(notificationIds: $ids) { " +
          STATUS_FIELDS + " } }",
        variables: { ids: ids },
      },
      {
        next: (result) => {
          if (result.errors) {
            showError(new Error(result.errors.map((error) => error.message).join(" ")));
            return;
          }
          const event = result.data.smsStatus;
          const row = rows.get(event.notificationId);
          if (row) {
            showStatus(row, event);
            row.dataset.live = "true";
          }
        },
        error: (error) => showError(error instanceof Error ? error : new Error("Live updates stopped.")),
        complete: () => {},
      },
    );
  }

  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("compose").addEventListener("submit", create);
  $("body").addEventListener("input", updateCounter);
})();
