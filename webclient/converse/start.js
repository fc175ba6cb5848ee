// Starts Converse.js against the Vestnik under test (parameters in the
// query string) and exposes its _converse object to the test as
// window.vestnikTest, through a whitelisted plugin.
const q = new URLSearchParams(location.search);
converse.plugins.add('vestnik-test', {
  initialize() { window.vestnikTest = this._converse; },
});
converse.initialize({
  websocket_url: q.get('ws') || undefined,
  bosh_service_url: q.get('bosh') || undefined,
  jid: q.get('jid'),
  password: q.get('password'),
  auto_login: true,
  discover_connection_methods: false,
  view_mode: 'fullscreen',
  whitelisted_plugins: ['vestnik-test'],
  loglevel: 'warn',
  muc_show_logs_before_join: true,
  clear_cache_on_logout: true,
  persistent_store: 'IndexedDB',
});
