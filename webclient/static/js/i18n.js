// Russian and English strings, chosen by the browser language.

const en = {
  appName: 'Vestnik',
  login: 'Login', password: 'Password', signIn: 'Sign in', signingIn: 'Signing in…',
  badLogin: 'Wrong login or password', loginFailed: 'Could not sign in, try again',
  loginHint: 'Use your company account',
  search: 'Search', chats: 'Chats', company: 'Company',
  noChats: 'No conversations yet. Pick a colleague in “Company”.',
  nothingFound: 'Nothing found',
  online: 'online', away: 'away', dnd: 'do not disturb', offline: 'offline',
  setOnline: 'Online', setAway: 'Away', setDnd: 'Do not disturb',
  lastSeen: 'last seen {when}', justNow: 'just now', minutesAgo: '{n} min ago',
  today: 'Today', yesterday: 'Yesterday', at: '{day} at {time}',
  typing: 'typing…', typingIn: '{name} is typing…',
  writeMessage: 'Write a message…', send: 'Send',
  edit: 'Edit', react: 'React', reply: 'Reply', replyTo: 'Reply to', earlierMessage: 'an earlier message', delete: 'Delete', cancel: 'Cancel', save: 'Save', editing: 'Editing',
  edited: 'edited', deleted: 'Message deleted', deleteConfirm: 'Delete this message?',
  you: 'You', system: 'System',
  pickConversation: 'Select a chat to start messaging',
  profile: 'Profile', title: 'Title', department: 'Department', manager: 'Manager', email: 'Email',
  showCorrespondence: 'Show correspondence', writeTo: 'Write a message',
  notifications: 'Notifications', noNotifications: 'No notifications',
  markAllRead: 'Mark all as read', logout: 'Log out', back: 'Back',
  connecting: 'Connecting…', reconnecting: 'No connection. Reconnecting…',
  members: '{n} members', groupChat: 'Group chat', loadingHistory: 'Loading…',
  chatId: 'Chat id', leaveChat: 'Leave chat', leaveConfirm: 'Leave the chat “{title}”?',
  historyStart: 'This is the beginning of your conversation',
  newMessage: 'New message', error: 'Error',
  status: 'Status', employees: '{n}',
};

const ru = {
  appName: 'Вестник',
  login: 'Логин', password: 'Пароль', signIn: 'Войти', signingIn: 'Вход…',
  badLogin: 'Неверный логин или пароль', loginFailed: 'Не удалось войти, попробуйте ещё раз',
  loginHint: 'Войдите под учётной записью компании',
  search: 'Поиск', chats: 'Чаты', company: 'Компания',
  noChats: 'Бесед пока нет. Выберите коллегу во вкладке «Компания».',
  nothingFound: 'Ничего не найдено',
  online: 'в сети', away: 'отошёл', dnd: 'не беспокоить', offline: 'не в сети',
  setOnline: 'В сети', setAway: 'Отошёл', setDnd: 'Не беспокоить',
  lastSeen: 'был(а) {when}', justNow: 'только что', minutesAgo: '{n} мин назад',
  today: 'Сегодня', yesterday: 'Вчера', at: '{day} в {time}',
  typing: 'печатает…', typingIn: '{name} печатает…',
  writeMessage: 'Напишите сообщение…', send: 'Отправить',
  edit: 'Изменить', react: 'Реакция', reply: 'Ответить', replyTo: 'Ответ для', earlierMessage: 'более раннее сообщение', delete: 'Удалить', cancel: 'Отмена', save: 'Сохранить', editing: 'Редактирование',
  edited: 'изменено', deleted: 'Сообщение удалено', deleteConfirm: 'Удалить это сообщение?',
  you: 'Вы', system: 'Система',
  pickConversation: 'Выберите чат, чтобы начать общение',
  profile: 'Профиль', title: 'Должность', department: 'Отдел', manager: 'Руководитель', email: 'Почта',
  showCorrespondence: 'Показать переписку', writeTo: 'Написать сообщение',
  notifications: 'Уведомления', noNotifications: 'Уведомлений нет',
  markAllRead: 'Прочитать все', logout: 'Выйти', back: 'Назад',
  connecting: 'Подключение…', reconnecting: 'Нет соединения. Переподключаемся…',
  members: 'участников: {n}', groupChat: 'Групповой чат', loadingHistory: 'Загрузка…',
  chatId: 'ID чата', leaveChat: 'Покинуть чат', leaveConfirm: 'Покинуть чат «{title}»?',
  historyStart: 'Это начало вашей переписки',
  newMessage: 'Новое сообщение', error: 'Ошибка',
  status: 'Статус', employees: '{n}',
};

export const dictionaries = { en, ru };

// pickLang returns 'ru' or 'en' for a list of browser languages (navigator.languages).
export function pickLang(langs) {
  for (const l of langs || []) {
    const base = String(l).toLowerCase().split(/[-_]/)[0];
    if (base === 'ru' || base === 'uk' || base === 'be' || base === 'kk') return 'ru';
    if (base === 'en') return 'en';
  }
  return 'en';
}

// makeT returns a translation function: t('key', {n: 3}).
export function makeT(lang) {
  const d = dictionaries[lang] || en;
  return (key, vars) => {
    let s = d[key] ?? en[key] ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  };
}
