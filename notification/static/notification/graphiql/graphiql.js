// GraphiQL for /graphql/: strawberry's page (explorer plugin, headers editor,
// subscriptions over graphql-transport-ws, query in the URL), with one change:
// the CSRF token is read from the csrftoken cookie on EVERY request, not once at
// page load. Django's login rotates the token; a token captured at load time
// makes the first request after login fail with 403 (an HTML page, which
// GraphiQL then shows as "Unexpected token '<'").
(function () {
  "use strict";

  const EXAMPLE_QUERY = `# GraphiQL for the SMS notification API.
#
# Log in first (the session cookie then authenticates everything, websockets too):
#
#   mutation { login(username: "admin", password: "...") { username } }
#
# Run: Ctrl-Enter. Complete: Ctrl-Space. Explorer: the compass icon on the left.
`;

  const parameters = {};
  for (const entry of window.location.search.slice(1).split("&")) {
    const eq = entry.indexOf("=");
    if (eq >= 0) {
      parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(
        entry.slice(eq + 1),
      );
    }
  }

  function updateURL(data) {
    Object.assign(parameters, data);
    const search = Object.keys(parameters)
      .filter((key) => Boolean(parameters[key]))
      .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]))
      .join("&");
    history.replaceState(null, null, "?" + search);
  }

  const fetchURL = window.location.href.split("?")[0];

  function webSocketURL(url) {
    const parsed = new URL(url);
    parsed.protocol = parsed.protocol === "http:" ? "ws:" : "wss:";
    parsed.hash = "";
    return parsed.toString();
  }

  const baseFetcher = GraphiQL.createFetcher({
    url: fetchURL,
    subscriptionUrl: webSocketURL(fetchURL),
  });

  // Headers typed in the headers editor still win over the automatic token.
  function fetcher(graphQLParams, options) {
    const headers = {};
    const csrfToken = Cookies.get("csrftoken");
    if (csrfToken) {
      headers["x-csrftoken"] = csrfToken;
    }
    Object.assign(headers, options && options.headers);
    return baseFetcher(graphQLParams, Object.assign({}, options, { headers: headers }));
  }

  const explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();

  function GraphiQLWithExplorer() {
    const [query, setQuery] = React.useState(parameters.q || EXAMPLE_QUERY);
    const [variables, setVariables] = React.useState(parameters.variables);
    const [headers, setHeaders] = React.useState(parameters.headers);

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorerPlugin],
      query: query,
      variables: variables,
      headers: headers,
      onEditQuery: (value) => {
        setQuery(value);
        updateURL({ q: value });
      },
      onEditVariables: (value) => {
        setVariables(value);
        updateURL({ variables: value });
      },
      onEditHeaders: setHeaders,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQLWithExplorer),
  );
})();
