// Starts GraphiQL against this server. Every asset comes from the server
// itself: nothing is loaded from a CDN.
(function () {
  var base = window.location.origin + '/graphql';
  var wsBase = base.replace(/^http/, 'ws') + '/ws';
  var fetcher = GraphiQL.createFetcher({ url: base, subscriptionUrl: wsBase });
  var defaultQuery = [
    '# Welcome to the healthcare API.',
    '#',
    '# 1. Run the `SignIn` mutation below (register first if you have no account).',
    '# 2. Copy `accessToken` into the Headers pane as',
    '#    { "Authorization": "Bearer <accessToken>" }',
    '# 3. Run `Me`.',
    '',
    'mutation SignIn {',
    '  login(input: { email: "ann@example.org", password: "correct horse battery" }) {',
    '    accessToken',
    '    expiresIn',
    '    user { id name role }',
    '  }',
    '}',
    '',
    'query Me {',
    '  me { id name email role createdAt }',
    '}',
    '',
  ].join('\n');
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: '{\n  "Authorization": "Bearer <accessToken>"\n}',
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
    })
  );
})();
