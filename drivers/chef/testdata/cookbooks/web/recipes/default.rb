package 'nginx'

template '/etc/nginx/sites-available/default' do
  source 'site.erb'
  variables(port: node['app']['port'])
end

service 'nginx' do
  action :enable
end
