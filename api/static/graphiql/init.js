// Starts GraphiQL against the endpoint this page was served from (no CDN, no inline script).
(function () {
  var url = window.location.origin + window.location.pathname;
  var fetcher = GraphiQL.createFetcher({ url: url });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultHeaders: '{\n  "X-API-Key": ""\n}',
    })
  );
})();
